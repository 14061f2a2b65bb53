using System.Diagnostics;
using System.Text;
using Heddle.Agent.Isolation;
using Heddle.Model.Definition;

namespace Heddle.Agent.Drivers;

/// <summary>
/// The `process` driver. Each instance runs from a generated launch script started under setsid, so it leads its own
/// session and process group and outlives the agent. As root, the script runs in a mount namespace of its own (unshare),
/// so the instance gets a private /tmp (on its disk), a size-capped /dev/shm and a /proc that shows no other uid's
/// processes (hidepid=invisible). The script joins the instance's cgroups before anything of the instance runs, sends
/// stdout and stderr to files (appending, so rotation can copy and truncate), starts the background startup tasks, then
/// execs taskset (sched_setaffinity to the instance's CPUs) and setpriv (the service's uid, no capabilities) into the
/// entry point. The pid the agent sees is therefore the entry point's own.
/// Everything before setpriv runs as root, so it runs only programs named by absolute path (<see cref="HostPrograms"/>)
/// with the agent's fixed environment: the role's variables are written to a file the instance's own shell reads after
/// privileges are dropped, so no variable and no file of the role can choose what runs as root.
/// </summary>
public sealed class ProcessDriver : IInstanceDriver
{
    /// <summary>/dev/shm's size in an instance's mount namespace (Docker's default); its pages count against the memory cap too.</summary>
    private const int SharedMemoryMiB = 64;

    /// <summary>What the instance's own shell runs, as its uid: read the role's variables, then become the command.</summary>
    private const string TenantShell = ". \"$0\" && exec \"$@\"";

    private readonly Cgroups? _cgroups;
    private readonly OomWatch? _oom;

    internal ProcessDriver(Cgroups? cgroups, string? cgroupsUnavailable)
    {
        _cgroups = cgroups;
        _oom = cgroups is null ? null : new OomWatch(cgroups);
        CgroupsUnavailable = cgroupsUnavailable;
    }

    public string Name => "process";

    /// <summary>Why instances are not placed in cgroups here, or null when they are.</summary>
    public string? CgroupsUnavailable { get; }

    public string? CgroupVersion => _cgroups?.Version;

    /// <summary>What confines an instance here, in words for `heddle nodes`.</summary>
    public string Isolation => _cgroups is null ? $"none: {CgroupsUnavailable}; instances are pinned by affinity only" : _cgroups.Describe();

    public async Task<int> RunStartupTaskAsync(InstanceLaunch launch, StartupTask task, int number, CancellationToken cancellationToken)
    {
        var script = WriteScript(launch, $"startup-{number}.sh", background: [], main: task.Command, args: task.Args);
        using var process = Spawn(launch, script);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
            return process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            Posix.SignalGroup(process.Id, Posix.SIGKILL);
            throw;
        }
    }

    public Task<RunningProcess> StartAsync(InstanceLaunch launch, CancellationToken cancellationToken) => Task.FromResult(Start(launch));

    public bool IsRunning(string instanceId, int pid, long startTime) => Posix.IsAlive(pid, startTime);

    /// <summary>
    /// The instance's disk (<see cref="InstanceDisk"/>, as root) holding app/ — a per-instance copy of the role
    /// folder, so instances may write to their working directory without touching the shared cache or each other — and
    /// tmp/, its /tmp. When instances run as their service's uid, app/ is given to the service, mode 0700.
    /// </summary>
    public void PrepareDisk(InstanceLaunch launch)
    {
        if (Directory.Exists(launch.WorkingDirectory))
        {
            return;
        }

        var disk = InstanceDisk.MountPoint(launch.Directory);
        if (launch.RunAs is not null)
        {
            InstanceDisk.Ensure(launch.Directory, launch.Role.Size.DiskMiB);
        }
        else
        {
            Directory.CreateDirectory(disk);
        }

        var tmp = Path.Combine(disk, "tmp");
        Directory.CreateDirectory(tmp);
        File.SetUnixFileMode(tmp, (UnixFileMode)0b1_111_111_111); // 1777, as /tmp is: only this instance's processes see it
        var staging = launch.WorkingDirectory + ".partial";
        if (Directory.Exists(staging))
        {
            Directory.Delete(staging, recursive: true);
        }

        CopyTree(launch.RoleDirectory, staging);
        if (launch.RunAs is { } owner)
        {
            Heddle.Agent.Isolation.StateFolders.Chown(staging, owner);
            File.SetUnixFileMode(staging, Heddle.Agent.Isolation.StateFolders.Private);
        }

        Directory.Move(staging, launch.WorkingDirectory);
    }

    /// <summary>Renamed into app/: rename replaces whatever the instance put at that name (a link included) and never writes through it.</summary>
    public void PlaceDescription(InstanceLaunch launch, string partialFile) =>
        File.Move(partialFile, Path.Combine(launch.WorkingDirectory, "heddle-instance.json"), overwrite: true);

    private static void CopyTree(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.EnumerateFiles(source))
        {
            var destination = Path.Combine(target, Path.GetFileName(file));
            File.Copy(file, destination);
            File.SetUnixFileMode(destination, File.GetUnixFileMode(file) | UnixFileMode.UserWrite);
        }

        foreach (var dir in Directory.EnumerateDirectories(source))
        {
            CopyTree(dir, Path.Combine(target, Path.GetFileName(dir)));
        }
    }

    internal RunningProcess Start(InstanceLaunch launch)
    {
        var background = launch.Role.Startup.Where(t => t.Type == StartupTaskType.Background).ToList();
        var script = WriteScript(launch, "launch.sh", background, launch.Role.EntryPoint.Command, launch.Role.EntryPoint.Args);
        _oom?.Started(launch.Id);
        var process = Spawn(launch, script);
        var startTime = Posix.StartTime(process.Id) ?? 0;
        return new RunningProcess(process.Id, startTime, process, launch.Id);
    }

    public string? WhyEnded(RunningProcess process, InstanceLaunch launch) => _oom?.WhyEnded(launch.Id, launch.MemoryMiB);

    public Task<int?> WaitForExitAsync(RunningProcess running, CancellationToken cancellationToken) => running.WaitForExitAsync(cancellationToken);

    /// <summary>
    /// SIGTERM to the process group and every task in the instance's cgroups (descendants that made a session of their
    /// own hear it too), the grace period while any of them runs, then every task of the cgroup is killed at once
    /// (freezer or cgroup.kill), so no descendant outlives its instance.
    /// </summary>
    public async Task StopAsync(RunningProcess running, TimeSpan grace, CancellationToken cancellationToken)
    {
        Posix.SignalGroup(running.Pid, Posix.SIGTERM);
        _cgroups?.SignalAll(running.Instance, Posix.SIGTERM);
        var deadline = Stopwatch.StartNew();
        while (Running(running) && deadline.Elapsed < grace)
        {
            await Task.Delay(50, cancellationToken);
        }

        Posix.SignalGroup(running.Pid, Posix.SIGKILL);
        _cgroups?.KillAll(running.Instance);
        while (Running(running) && deadline.Elapsed < grace + TimeSpan.FromSeconds(5))
        {
            await Task.Delay(20, cancellationToken);
        }

        if (running.Child is { } child)
        {
            await child.WaitForExitAsync(cancellationToken);
        }
    }

    /// <summary>Removes this agent's cgroup folders (a cluster's teardown, once every instance has stopped).</summary>
    public void ReleaseHost() => _cgroups?.RemoveAll();

    private bool Running(RunningProcess running) =>
        Posix.IsAlive(running.Pid, running.StartTime) || (_cgroups is not null && _cgroups.Tasks(running.Instance).Count > 0);

    public bool Signal(RunningProcess process, int signal) => Posix.IsAlive(process.Pid, process.StartTime) && Posix.Signal(process.Pid, signal);

    /// <summary>The cgroups go, and the instance's disk (app/, its /tmp) with them; its logs stay for the log retention (the agent sweeps them).</summary>
    public void Cleanup(string instanceId, string? directory)
    {
        _cgroups?.Remove(instanceId);
        _oom?.Forget(instanceId);
        if (directory is null)
        {
            return;
        }

        try
        {
            InstanceDisk.Remove(directory);
            foreach (var folder in new[] { InstanceDisk.MountPoint(directory), Path.Combine(directory, "app") })
            {
                if (Directory.Exists(folder) && !Posix.IsMountPoint(folder))
                {
                    Directory.Delete(folder, recursive: true);
                }
            }

            File.Delete(Path.Combine(directory, "environment"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The sweep removes what is left with the logs.
        }
    }

    /// <summary>
    /// setsid → (as root: unshare, a mount namespace whose mounts never reach the host) → the shell running the script, with
    /// the fixed environment of <see cref="HostPrograms"/> and nothing of the role's.
    /// </summary>
    private static Process Spawn(InstanceLaunch launch, string script)
    {
        var start = new ProcessStartInfo(HostPrograms.Setsid)
        {
            WorkingDirectory = launch.WorkingDirectory,
            UseShellExecute = false,
        };
        if (launch.RunAs is not null)
        {
            foreach (var arg in new[] { HostPrograms.Unshare, "--mount", "--propagation", "private" })
            {
                start.ArgumentList.Add(arg);
            }
        }

        start.ArgumentList.Add(HostPrograms.Shell);
        start.ArgumentList.Add(script);
        start.Environment.Clear();
        foreach (var (name, value) in HostPrograms.Environment)
        {
            start.Environment[name] = value;
        }

        return Process.Start(start) ?? throw new InvalidOperationException("setsid did not start");
    }

    private string WriteScript(InstanceLaunch launch, string name, IReadOnlyList<StartupTask> background, string main, IReadOnlyList<string> args)
    {
        var cgroupFiles = _cgroups?.Create(launch.Id, launch.RealCpus, (long)launch.MemoryMiB << 20, launch.Role.Size.MaxProcesses) ?? [];
        var environment = WriteEnvironment(launch);
        var cpus = string.Join(',', launch.RealCpus.Distinct().Order());
        var script = new StringBuilder();
        script.Append("#!/bin/sh\n# Written by the heddle agent for ").Append(launch.Id).Append(
            ". Runs as root with the agent's environment only: every program by its absolute path.\n");
        foreach (var file in cgroupFiles)
        {
            script.Append("echo $$ > ").Append(Quote(file)).Append(" || { echo 'heddle: cannot join cgroup ").Append(file.Replace("'", string.Empty)).Append("' >&2; exit 97; }\n");
        }

        script.Append("exec >>").Append(Quote(launch.StdoutPath)).Append(" 2>>").Append(Quote(launch.StderrPath)).Append(" </dev/null\n");
        if (launch.RunAs is not null)
        {
            // In the instance's own mount namespace (unshare): nothing mounted here is seen by the host or another instance.
            var disk = InstanceDisk.MountPoint(launch.Directory);
            AppendMount(script, "-t proc -o nosuid,nodev,noexec,hidepid=invisible proc /proc");
            AppendMount(script, $"--bind {Quote(Path.Combine(disk, "tmp"))} /tmp");
            AppendMount(script, "-o remount,bind,nosuid,nodev /tmp");
            AppendMount(script, $"-t tmpfs -o nosuid,nodev,size={SharedMemoryMiB}m,mode=1777 shm /dev/shm");
        }

        // Everything of the instance runs as its service's uid, with no supplementary groups, no capabilities left and no
        // way to gain privileges (setuid files included); the cgroups and mounts above were made as root, before this.
        var runAs = launch.RunAs is { } id
            ? $"{HostPrograms.Setpriv} --reuid={id.Uid} --regid={id.Gid} --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "
            : string.Empty;
        var tenant = $"{HostPrograms.Shell} -c {Quote(TenantShell)} {Quote(environment)} ";
        foreach (var task in background)
        {
            script.Append(HostPrograms.Taskset).Append(" -c ").Append(cpus).Append(' ').Append(runAs).Append(tenant).Append(Command(task.Command, task.Args)).Append(" &\n");
        }

        script.Append("exec ").Append(HostPrograms.Taskset).Append(" -c ").Append(cpus).Append(' ').Append(runAs).Append(tenant).Append(Command(main, args)).Append('\n');
        var path = Path.Combine(launch.Directory, name);
        File.WriteAllText(path, script.ToString());
        return path;
    }

    private static void AppendMount(StringBuilder script, string arguments) =>
        script.Append(HostPrograms.Mount).Append(' ').Append(arguments)
            .Append(" || { echo 'heddle: cannot prepare the mounts of the instance (mount ").Append(arguments.Replace("'", string.Empty)).Append(")' >&2; exit 97; }\n");

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

    /// <summary>POSIX shell single quoting: every character literal, a quote written as '\''.</summary>
    internal static string Quote(string value) => "'" + value.Replace("'", "'\\''") + "'";
}
