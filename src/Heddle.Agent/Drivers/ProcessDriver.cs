using System.Diagnostics;
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
/// Everything before setpriv runs as root with nothing of the role's: see <see cref="LaunchScript"/>.
/// </summary>
public sealed class ProcessDriver : IInstanceDriver
{
    private readonly Cgroups? _cgroups;
    private readonly OomWatch? _oom;
    private readonly TimeProvider _time;

    /// <param name="time">The agent's clock: a stop's grace period and polls run on it.</param>
    internal ProcessDriver(Cgroups? cgroups, string? cgroupsUnavailable, TimeProvider time)
    {
        _cgroups = cgroups;
        _time = time;
        _oom = cgroups is null ? null : new OomWatch(cgroups);
        CgroupsUnavailable = cgroupsUnavailable;
    }

    public string Name => DriverNames.Process;

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
        if (Directory.Exists(Path.Combine(launch.Directory, "app")))
        {
            // Written by an agent before disks, for a run that has ended: this run starts on a disk from the role's files.
            Directory.Delete(Path.Combine(launch.Directory, "app"), recursive: true);
        }

        // Each step is idempotent: an instance restarted, or adopted by a new agent, or whose host restarted (the image
        // is there but not mounted) gets its disk and namespace back with what they held.
        var disk = InstanceDisk.MountPoint(launch.Directory);
        if (launch.RunAs is not null)
        {
            InstanceDisk.Ensure(launch.Directory, launch.Role.Size.DiskMiB);
        }
        else
        {
            Directory.CreateDirectory(disk);
        }

        var tmp = InstanceMounts.Tmp(launch.Directory);
        Directory.CreateDirectory(tmp);
        File.SetUnixFileMode(Path.GetDirectoryName(tmp)!, launch.RunAs is null ? StateFolders.Shared : StateFolders.Private);
        File.SetUnixFileMode(tmp, (UnixFileMode)0b1_111_111_111); // 1777, as /tmp is: only this instance's processes see it
        if (launch.RunAs is not null)
        {
            InstanceMounts.Ensure(launch.Directory, launch.SharedMemoryMiB);
        }

        if (Directory.Exists(launch.WorkingDirectory))
        {
            return;
        }

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
    public (long Used, long Size)? DiskUsage(string directory) => InstanceDisk.Usage(directory);

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
        var since = _time.GetTimestamp();
        while (Running(running) && _time.GetElapsedTime(since) < grace)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), _time, cancellationToken);
        }

        Posix.SignalGroup(running.Pid, Posix.SIGKILL);
        _cgroups?.KillAll(running.Instance);
        while (Running(running) && _time.GetElapsedTime(since) < grace + TimeSpan.FromSeconds(5))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time, cancellationToken);
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
            InstanceMounts.Remove(directory);
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
    /// setsid → the shell running the script, with the fixed environment of <see cref="HostPrograms"/> and nothing of the role's.
    /// </summary>
    private static Process Spawn(InstanceLaunch launch, string script)
    {
        var start = HostPrograms.StartInfo(HostPrograms.Setsid, HostPrograms.Shell, script);
        start.WorkingDirectory = launch.WorkingDirectory;
        return Process.Start(start) ?? throw new InvalidOperationException("setsid did not start");
    }

    private string WriteScript(InstanceLaunch launch, string name, IReadOnlyList<StartupTask> background, string main, IReadOnlyList<string> args)
    {
        var cgroupFiles = _cgroups?.Create(launch.Id, launch.RealCpus, (long)launch.MemoryMiB << 20, launch.Role.Size.MaxProcesses) ?? [];
        return LaunchScript.Write(launch, name, cgroupFiles, background, main, args);
    }

    /// <summary>POSIX shell single quoting: every character literal, a quote written as '\''.</summary>
    internal static string Quote(string value) => "'" + value.Replace("'", "'\\''") + "'";
}
