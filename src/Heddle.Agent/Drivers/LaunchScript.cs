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
    /// <summary>
    /// What the instance's own shell runs, as its uid: go to its working folder (by path, inside its own mount namespace,
    /// so the folder is the one that namespace sees), read the role's variables, then become the command.
    /// </summary>
    private const string TenantShell = "cd \"$0\" || exit 97; unset OLDPWD; . \"$1\" && shift && exec \"$@\"";

    public static string Write(InstanceLaunch launch, string name, IReadOnlyList<string> cgroupFiles, IReadOnlyList<StartupTask> background, string main, IReadOnlyList<string> args)
    {
        var environment = WriteEnvironment(launch);
        var script = new StringBuilder();
        script.Append("#!/bin/sh\n# Written by the heddle agent for ").Append(launch.Id).Append(
            ". Runs as root with the agent's environment only: every program by its absolute path.\n");
        foreach (var file in cgroupFiles)
        {
            script.Append("echo $$ > ").Append(Quote(file)).Append(" || { echo 'heddle: cannot join cgroup ").Append(file.Replace("'", string.Empty)).Append("' >&2; exit 97; }\n");
        }

        script.Append("exec >>").Append(Quote(launch.StdoutPath)).Append(" 2>>").Append(Quote(launch.StderrPath)).Append(" </dev/null\n");
        // As root: into the instance's own mount namespace (its /tmp, /dev/shm, /proc) and its service's user namespace
        // (no user namespace below it), then to the service's uid with no supplementary groups, no
        // capabilities left and no way to gain privileges (setuid files included). Its cpuset cgroup, joined above, holds
        // it to its CPUs; taskset pins it where there are no cgroups (an agent that is not root).
        var enter = launch.RunAs is { } id
            ? $"{HostPrograms.Nsenter} {Quote($"--mount={InstanceMounts.File(launch.Directory)}")} {Quote($"--user={UserNamespaces.Ensure(id)}")} -- "
                + $"{HostPrograms.Setpriv} --reuid={id.Uid} --regid={id.Gid} --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "
            : string.Empty;
        var pin = cgroupFiles.Count > 0 ? string.Empty : $"{HostPrograms.Taskset} -c {string.Join(',', launch.RealCpus.Distinct().Order())} ";
        var tenant = $"{HostPrograms.Shell} -c {Quote(TenantShell)} {Quote(launch.WorkingDirectory)} {Quote(environment)} ";
        foreach (var task in background)
        {
            script.Append(pin).Append(enter).Append(tenant).Append(Command(task.Command, task.Args)).Append(" &\n");
        }

        script.Append("exec ").Append(pin).Append(enter).Append(tenant).Append(Command(main, args)).Append('\n');
        var path = Path.Combine(launch.Directory, name);
        File.WriteAllText(path, script.ToString());
        return path;
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
