using System.Text;
using Heddle.Agent.Isolation;
using Heddle.Model.Definition;
using static Heddle.Agent.Drivers.ProcessDriver;

namespace Heddle.Agent.Drivers;

/// <summary>
/// The process driver's launch script for one run of an instance (its entry point, or one startup task). Everything
/// before setpriv runs as root, so it runs only programs named by absolute path (<see cref="HostPrograms"/>) with the
/// agent's fixed environment: the role's variables are written to a file the instance's own shell reads after
/// privileges are dropped, so no variable and no file of the role can choose what runs as root.
/// </summary>
internal static class LaunchScript
{
    /// <summary>What the instance's own shell runs, as its uid: read the role's variables, then become the command.</summary>
    private const string TenantShell = ". \"$0\" && exec \"$@\"";

    public static string Write(InstanceLaunch launch, string name, IReadOnlyList<string> cgroupFiles, IReadOnlyList<StartupTask> background, string main, IReadOnlyList<string> args)
    {
        var environment = WriteEnvironment(launch);
        var cpus = string.Join(',', launch.RealCpus.Distinct().Order());
        var script = new StringBuilder();
        script.Append("#!/bin/sh\n# Written by the heddle agent for ").Append(launch.Id).Append(
            ". Runs as root with the agent's environment only: every program by its absolute path.\n");
        if (launch.RunAs is { } owner)
        {
            // Three steps, one pid: (1) as root of the host, in the instance's own mount namespace (InstanceMounts, entered
            // by nsenter), it joins the cgroups, leaves a root helper behind in the host's user namespace and
            // enters a user namespace of its own; (2) there it tells the helper (a FIFO), which maps uid 0 and the service's
            // uid into it and answers (another FIFO), then execs itself again so that root's capabilities there are whole;
            // (3) it forbids any user namespace below its own (max_user_namespaces 0: `unshare -U` fails with ENOSPC) and
            // drops to the service's uid. FIFOs, not polling: the steps share the instance's own CPUs.
            Posix.MakeFifo(Path.Combine(launch.Directory, name + ".entered"));
            Posix.MakeFifo(Path.Combine(launch.Directory, name + ".mapped"));
            var entered = Quote(Path.Combine(launch.Directory, name + ".entered"));
            var mapped = Quote(Path.Combine(launch.Directory, name + ".mapped"));
            script.Append("case \"$1\" in\nconfined)\n");
            script.Append("  echo entered > ").Append(entered).Append("\n");
            script.Append("  read -r answer < ").Append(mapped).Append("; [ \"$answer\" = mapped ] || { echo 'heddle: the user namespace was not mapped' >&2; exit 97; }\n");
            script.Append("  exec ").Append(HostPrograms.Shell).Append(" \"$0\" mapped ;;\nmapped) ;;\n*)\n");
            AppendRootSteps(script, launch, cgroupFiles);
            var map = $"0 0 1\\n{owner.Uid} {owner.Uid} 1\\n";
            var gidMap = $"0 0 1\\n{owner.Gid} {owner.Gid} 1\\n";
            script.Append("  me=$$\n  ( read -r _ < ").Append(entered).Append("; printf '").Append(map).Append("' > /proc/$me/uid_map && printf '").Append(gidMap)
                .Append("' > /proc/$me/gid_map && echo mapped > ").Append(mapped).Append(" || echo failed > ").Append(mapped).Append(" ) &\n");
            script.Append("  exec ").Append(HostPrograms.Unshare).Append(" --user -- ").Append(HostPrograms.Shell).Append(" \"$0\" confined ;;\nesac\n");
            script.Append("echo 0 > /proc/sys/user/max_user_namespaces || { echo 'heddle: cannot forbid user namespaces' >&2; exit 97; }\n");
        }
        else
        {
            AppendRootSteps(script, launch, cgroupFiles);
        }

        // Everything of the instance runs as its service's uid, with no supplementary groups, no capabilities left and no
        // way to gain privileges (setuid files included); the cgroups and mounts above were made as root, before this.
        // Its cpuset cgroup, once joined, already holds it to its CPUs; taskset pins it where there is none (not root).
        var runAs = launch.RunAs is { } id
            ? $"{HostPrograms.Setpriv} --reuid={id.Uid} --regid={id.Gid} --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "
            : string.Empty;
        var pin = cgroupFiles.Count > 0 ? string.Empty : $"{HostPrograms.Taskset} -c {cpus} ";
        var tenant = $"{HostPrograms.Shell} -c {Quote(TenantShell)} {Quote(environment)} ";
        foreach (var task in background)
        {
            script.Append(pin).Append(runAs).Append(tenant).Append(Command(task.Command, task.Args)).Append(" &\n");
        }

        script.Append("exec ").Append(pin).Append(runAs).Append(tenant).Append(Command(main, args)).Append('\n');
        var path = Path.Combine(launch.Directory, name);
        File.WriteAllText(path, script.ToString());
        return path;
    }

    /// <summary>Joins the cgroups and sends output to the log files.</summary>
    private static void AppendRootSteps(StringBuilder script, InstanceLaunch launch, IReadOnlyList<string> cgroupFiles)
    {
        foreach (var file in cgroupFiles)
        {
            script.Append("echo $$ > ").Append(Quote(file)).Append(" || { echo 'heddle: cannot join cgroup ").Append(file.Replace("'", string.Empty)).Append("' >&2; exit 97; }\n");
        }

        script.Append("exec >>").Append(Quote(launch.StdoutPath)).Append(" 2>>").Append(Quote(launch.StderrPath)).Append(" </dev/null\n");
    }

    /// <summary>
    /// The instance's variables (HOME, the role's own, Heddle's) as a file of <c>export NAME='value'</c> lines that only the
    /// instance's uid can read (it holds the settings), read by its own shell once privileges are dropped.
    /// </summary>
    private static string WriteEnvironment(InstanceLaunch launch)
    {
        var text = new StringBuilder("# Written by the heddle agent; read by the instance's shell as its own uid.\n");
        var variables = new Dictionary<string, string>(StringComparer.Ordinal) { ["HOME"] = launch.WorkingDirectory };
        foreach (var (name, value) in launch.Environment)
        {
            variables[name] = value;
        }

        foreach (var (name, value) in variables)
        {
            if (!Heddle.Model.Validation.Names.IsEnvironmentName(name))
            {
                throw new InvalidOperationException($"the environment variable name '{name}' is not valid ({Heddle.Model.Validation.Names.EnvironmentNameRule})");
            }

            text.Append("export ").Append(name).Append('=').Append(Quote(value)).Append('\n');
        }

        var path = Path.Combine(launch.Directory, "environment");
        var partial = path + ".partial";
        File.Delete(partial);
        using (var file = new FileStream(partial, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
        using (var writer = new StreamWriter(file))
        {
            writer.Write(text.ToString());
        }

        if (launch.RunAs is { } owner && !Posix.LChown(partial, owner.Uid, owner.Gid))
        {
            throw new IOException($"cannot give {partial} to uid {owner.Uid}");
        }

        File.SetUnixFileMode(partial, UnixFileMode.UserRead);
        File.Move(partial, path, overwrite: true);
        return path;
    }

    private static string Command(string command, IReadOnlyList<string> args) => string.Join(' ', new[] { command }.Concat(args).Select(Quote));

}
