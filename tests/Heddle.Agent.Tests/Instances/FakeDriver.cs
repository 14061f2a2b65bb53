using System.Collections.Concurrent;
using Heddle.Agent.Drivers;
using Heddle.Agent.Packages;
using Heddle.Agent.Probes;
using Heddle.Model.Definition;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Agent.Tests.Instances;

/// <summary>
/// A driver that starts nothing: each start is a pretend process the test ends with <see cref="Crash"/>, or the runner
/// with <see cref="StopAsync"/>. It records what it was asked to do.
/// </summary>
internal sealed class FakeDriver : IInstanceDriver
{
    private readonly ConcurrentDictionary<int, TaskCompletionSource<int?>> _exits = new();
    private int _pid = 1000;

    public string Name => "process";

    public ConcurrentQueue<(RunningProcess Process, InstanceLaunch Launch)> Started { get; } = new();

    public ConcurrentQueue<(int Pid, TimeSpan Grace)> Stops { get; } = new();

    public ConcurrentQueue<(int Pid, int Signal)> Signals { get; } = new();

    public ConcurrentQueue<string> CleanedUp { get; } = new();

    public (RunningProcess Process, InstanceLaunch Launch) Last => Started.Last();

    /// <summary>Ends the last started process with <paramref name="code"/>, after it wrote <paramref name="stderr"/>.</summary>
    public void Crash(int code, string stderr)
    {
        var (process, launch) = Last;
        File.AppendAllText(launch.StderrPath, stderr + "\n");
        _exits[process.Pid].TrySetResult(code);
    }

    public void PrepareDisk(InstanceLaunch launch) => Directory.CreateDirectory(Path.Combine(launch.Directory, "disk", "app"));

    public (long Used, long Size)? DiskUsage(string directory) => null;

    public void PlaceDescription(InstanceLaunch launch, string partialFile) =>
        File.Move(partialFile, Path.Combine(launch.Directory, "disk", "app", "heddle-instance.json"), overwrite: true);

    public Task<int> RunStartupTaskAsync(InstanceLaunch launch, StartupTask task, int number, CancellationToken cancellationToken) => Task.FromResult(0);

    public Task<RunningProcess> StartAsync(InstanceLaunch launch, CancellationToken cancellationToken)
    {
        var pid = Interlocked.Increment(ref _pid);
        _exits[pid] = new TaskCompletionSource<int?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new RunningProcess(pid, pid, null, launch.Id);
        Started.Enqueue((process, launch));
        return Task.FromResult(process);
    }

    public bool IsRunning(string instanceId, int pid, long startTime) => false;

    public Task<int?> WaitForExitAsync(RunningProcess process, CancellationToken cancellationToken) => _exits[process.Pid].Task.WaitAsync(cancellationToken);

    public Task StopAsync(RunningProcess process, TimeSpan grace, CancellationToken cancellationToken)
    {
        Stops.Enqueue((process.Pid, grace));
        _exits[process.Pid].TrySetResult(143);
        return Task.CompletedTask;
    }

    public string? WhyEnded(RunningProcess process, InstanceLaunch launch) => null;

    public bool Signal(RunningProcess process, int signal)
    {
        Signals.Enqueue((process.Pid, signal));
        return true;
    }

    public void Cleanup(string instanceId, string? directory) => CleanedUp.Enqueue(instanceId);

    public void ReleaseHost()
    {
    }
}

/// <summary>A probe whose answer the test sets.</summary>
internal sealed class FakeProbe : IProbe
{
    public volatile bool Healthy = true;

    public string Description => "fake";

    public Task<bool> CheckAsync(CancellationToken cancellationToken) => Task.FromResult(Healthy);
}

/// <summary>One package with one role, already on the node.</summary>
internal sealed class FakePackages(string directory, RoleDefinition role) : IPackageSource
{
    public Task<CachedPackage> GetAsync(string sha256, string relativeUrl, CancellationToken cancellationToken) =>
        Task.FromResult(new CachedPackage(sha256, directory, new ServiceDefinition { Name = "shop", Roles = [role] }));

    public void Evict(IReadOnlySet<string> needed)
    {
    }
}

/// <summary>
/// A fake clock that remembers the waits asked of it and those that ended, so a test advances it only once the wait it
/// means is pending, and can tell that a wait has not ended yet (a fake timer fires within <see cref="FakeTimeProvider.Advance"/>).
/// </summary>
internal sealed class WatchedTime() : FakeTimeProvider(DateTimeOffset.UtcNow)
{
    private readonly ConcurrentQueue<TimeSpan> _waits = new();
    private readonly ConcurrentQueue<TimeSpan> _fired = new();

    /// <summary>How many timers were made due after <paramref name="due"/>.</summary>
    public int Waits(TimeSpan due) => _waits.Count(w => w == due);

    /// <summary>How many timers made due after <paramref name="due"/> have fired.</summary>
    public int Fired(TimeSpan due) => _fired.Count(w => w == due);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        // Noted once the timer exists, so a test that saw the note and advances the clock moves this timer.
        var timer = base.CreateTimer(
            s =>
            {
                _fired.Enqueue(dueTime);
                callback(s);
            },
            state, dueTime, period);
        _waits.Enqueue(dueTime);
        return timer;
    }
}
