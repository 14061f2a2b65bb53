using Heddle.Model.Definition;

namespace Heddle.Agent.Drivers;

/// <summary>Everything a driver needs to start one instance.</summary>
public sealed record InstanceLaunch
{
    public required string Id { get; init; }

    public required RoleDefinition Role { get; init; }

    /// <summary>The instance's own folder: <c>app/</c> (working directory), <c>logs/</c>, launch scripts.</summary>
    public required string Directory { get; init; }

    public required IReadOnlyList<int> RealCpus { get; init; }

    public required int MemoryMiB { get; init; }

    public required IReadOnlyDictionary<string, string> Environment { get; init; }

    /// <summary>The role's folder in the unpacked package (shared, never written).</summary>
    public required string RoleDirectory { get; init; }

    /// <summary>The unpacked base image, for a container role; null for a process role.</summary>
    public string? ImageRootfs { get; init; }

    /// <summary>The service's own uid and gid; null when the agent is not root (the instance runs as the agent's user).</summary>
    public Isolation.Identity? RunAs { get; init; }

    /// <summary>
    /// The process driver's working folder: app/ on the instance's disk (an instance an agent before disks started, and
    /// that still runs, keeps its app/ beside it until it is started again).
    /// </summary>
    public string WorkingDirectory => System.IO.Directory.Exists(Path.Combine(Directory, "app")) ? Path.Combine(Directory, "app") : Path.Combine(Directory, "disk", "app");

    /// <summary>
    /// The size of the instance's own /dev/shm (both drivers): Docker's 64 MiB, or a quarter of the memory cap when that is
    /// less, since its pages count against the cap and filling it must fail with ENOSPC before the instance runs out of memory.
    /// </summary>
    public int SharedMemoryMiB => Math.Clamp(MemoryMiB / 4, 1, 64);

    public string StdoutPath => Path.Combine(Directory, "logs", "stdout.log");

    public string StderrPath => Path.Combine(Directory, "logs", "stderr.log");
}

/// <summary>
/// A started (or adopted) instance: the entry point's pid (the leader of its own process group, or a container's
/// PID 1 as the host sees it); <see cref="Child"/> is what the agent started and can wait for (the launch script,
/// or runc); <see cref="Instance"/> names its cgroups.
/// </summary>
public sealed record RunningProcess(int Pid, long StartTime, System.Diagnostics.Process? Child, string Instance)
{
    /// <summary>The exit code of what the agent started; null for an adopted instance, whose end can only be seen (an earlier agent started it).</summary>
    public async Task<int?> WaitForExitAsync(CancellationToken cancellationToken)
    {
        if (Child is { } child)
        {
            await child.WaitForExitAsync(cancellationToken);
            return child.ExitCode;
        }

        while (Posix.IsAlive(Pid, StartTime))
        {
            await Task.Delay(100, cancellationToken);
        }

        return null;
    }
}

/// <summary>
/// How instances are started: a small interface with one implementation per `driver:` of the model (process and
/// container), chosen by name.
/// </summary>
public interface IInstanceDriver
{
    string Name { get; }

    /// <summary>Makes the instance's disk (the process driver's copy of the role folder, the container's overlay); kept across restarts.</summary>
    void PrepareDisk(InstanceLaunch launch);

    /// <summary>Bytes used and size of the disk <see cref="PrepareDisk"/> made for the instance in <paramref name="directory"/>; null when it has none of its own.</summary>
    (long Used, long Size)? DiskUsage(string directory);

    /// <summary>Renames a freshly written heddle-instance.json (beside the instance folder) to where the instance reads it.</summary>
    void PlaceDescription(InstanceLaunch launch, string partialFile);

    /// <summary>
    /// Whether anything reads heddle-instance.json: false for a driver that runs nothing (hollow), whose runner then does
    /// not write it (it was rewritten for every instance whenever a peer changed, the hollow process's largest cost).
    /// </summary>
    bool ReadsDescription => true;

    /// <summary>Runs one `simple` startup task to completion and returns its exit code.</summary>
    Task<int> RunStartupTaskAsync(InstanceLaunch launch, StartupTask task, int number, CancellationToken cancellationToken);

    /// <summary>Starts the entry point (with the `background` startup tasks beside it).</summary>
    Task<RunningProcess> StartAsync(InstanceLaunch launch, CancellationToken cancellationToken);

    /// <summary>Whether an instance an earlier agent started still runs (to adopt it).</summary>
    bool IsRunning(string instanceId, int pid, long startTime);

    /// <summary>Waits for the process to end; returns its exit code when known.</summary>
    Task<int?> WaitForExitAsync(RunningProcess process, CancellationToken cancellationToken);

    /// <summary>SIGTERM to the whole group, the grace period, then SIGKILL to the whole group.</summary>
    Task StopAsync(RunningProcess process, TimeSpan grace, CancellationToken cancellationToken);

    /// <summary>Why the instance's process ended when the driver knows better than its exit code ("out of memory (limit 64 MiB)"); else null.</summary>
    string? WhyEnded(RunningProcess process, InstanceLaunch launch);

    /// <summary>Sends a signal to the entry point's process (SIGHUP: reload heddle-instance.json); false when it is gone.</summary>
    bool Signal(RunningProcess process, int signal);

    /// <summary>Releases what the instance held on the host (its cgroups, its disk; not its logs).</summary>
    void Cleanup(string instanceId, string? directory);

    /// <summary>Removes this agent's own host resources (a cluster's teardown, once every instance has stopped).</summary>
    void ReleaseHost();
}
