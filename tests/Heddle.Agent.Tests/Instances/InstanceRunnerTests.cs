using System.Collections.Concurrent;
using Heddle.Agent.Drivers;
using Heddle.Agent.Instances;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Instances;

/// <summary>The runner over a fake driver, a fake probe and a fake clock: what it reports, when it restarts, how it stops.</summary>
public sealed class InstanceRunnerTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan ProbeInterval = FakeNode.ProbeInterval;
    private const int ProbeThreshold = FakeNode.ProbeThreshold;

    private readonly TempDirectory _state = new("heddle-runner-");
    private readonly HttpClient _http = new();
    private readonly FakeDriver _driver = new();
    private readonly FakeProbe _probe = new();
    private readonly WatchedTime _time = new();
    private readonly ConcurrentQueue<InstanceReport> _reports = new();
    private readonly InstanceRunner _runner;
    private int _journalChanges;

    public InstanceRunnerTests()
    {
        var context = FakeNode.Context(_state, _driver, _probe, _time, _http);
        _runner = new InstanceRunner(FakeNode.Goal(0), "key", context, null, _reports.Enqueue, () => Interlocked.Increment(ref _journalChanges));
    }

    public void Dispose()
    {
        _http.Dispose();
        _state.Dispose();
    }

    private InstanceReport Latest => _reports.Last();

    private Task UntilAsync(Func<bool> done, string what) => Poll.UntilAsync(done, Deadline, what);

    private async Task StartedAndReadyAsync(int starts)
    {
        await UntilAsync(() => _driver.Started.Count == starts && _reports.LastOrDefault()?.State == InstanceStates.Ready, $"start {starts} reported Ready");
    }

    /// <summary>Crashes the instance and advances the clock to a millisecond short of its restart: the backoff has not ended then.</summary>
    private async Task CrashAndWaitAlmostAsync(TimeSpan backoff, int restart)
    {
        var waits = _time.Waits(backoff);
        _driver.Crash(3, $"boom {restart}");
        await UntilAsync(() => Latest.State == InstanceStates.Faulted, $"crash {restart} reported Faulted");
        Assert.Equal($"exited with code 3; restarting in {backoff.TotalSeconds:0.#} s (restart {restart})", Latest.Reason);
        Assert.Equal(("exited with code 3", $"boom {restart}", restart), (Latest.Failure, Latest.LastStderr, Latest.Restarts));

        await UntilAsync(() => _time.Waits(backoff) > waits, $"the {backoff.TotalSeconds} s backoff pending");
        var fired = _time.Fired(backoff);
        _time.Advance(backoff - TimeSpan.FromMilliseconds(1));
        Assert.Equal(fired, _time.Fired(backoff));
        Assert.Equal(restart, _driver.Started.Count);
        Assert.Equal(InstanceStates.Faulted, Latest.State);
    }

    /// <summary>Advances the clock the last millisecond of the backoff: it ends then, and the instance starts again.</summary>
    private async Task BackoffEndsAsync(TimeSpan backoff, int starts)
    {
        var fired = _time.Fired(backoff);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(fired + 1, _time.Fired(backoff));
        await StartedAndReadyAsync(starts);
    }

    [Fact]
    public async Task Start_HealthyProbe_ReportsDownloadingStartingReady_WithItsEnvironmentAndDescription()
    {
        _runner.Start();
        try
        {
            await StartedAndReadyAsync(1);

            Assert.Equal([InstanceStates.Downloading, InstanceStates.Starting, InstanceStates.Ready], _reports.Select(r => r.State));
            var (process, launch) = _driver.Last;
            Assert.Equal((process.Pid, 0, 1L, 1L), (Latest.Pid, Latest.Restarts, Latest.Generation, Latest.Revision));
            Assert.Equal(("test", "shop/web/0", "hello"), (launch.Environment["MODE"], launch.Environment["HEDDLE_INSTANCE"], launch.Environment["HEDDLE_SETTING_GREETING"]));
            Assert.Equal(_state.Combine("agent", "instances", "shop", "web", "0-g1"), launch.Directory);
            Assert.True(File.Exists(Path.Combine(launch.Directory, "disk", "app", "heddle-instance.json")), "heddle-instance.json placed");
            Assert.Equal(process.Pid, _runner.JournalEntry()?.Pid);
            Assert.True(Volatile.Read(ref _journalChanges) >= 1, "the journal was told of the start");
        }
        finally
        {
            await _runner.StopAsync();
        }
    }

    [Fact]
    public async Task EntryPointCrashes_RestartedAfterTheBackoffAndNotBefore_TheBackoffGrows()
    {
        _runner.Start();
        try
        {
            await StartedAndReadyAsync(1);

            await CrashAndWaitAlmostAsync(TimeSpan.FromSeconds(1), restart: 1);
            await BackoffEndsAsync(TimeSpan.FromSeconds(1), starts: 2);
            Assert.Equal(1, Latest.Restarts);

            await CrashAndWaitAlmostAsync(TimeSpan.FromSeconds(2), restart: 2);
            await BackoffEndsAsync(TimeSpan.FromSeconds(2), starts: 3);

            await CrashAndWaitAlmostAsync(TimeSpan.FromSeconds(4), restart: 3);
            await BackoffEndsAsync(TimeSpan.FromSeconds(4), starts: 4);
        }
        finally
        {
            await _runner.StopAsync();
        }
    }

    [Fact]
    public async Task EntryPointCrashesAfterAStableMinute_RestartedAfterTheFirstBackoffAgain()
    {
        _runner.Start();
        try
        {
            await StartedAndReadyAsync(1);
            await CrashAndWaitAlmostAsync(TimeSpan.FromSeconds(1), restart: 1);
            await BackoffEndsAsync(TimeSpan.FromSeconds(1), starts: 2);
            await CrashAndWaitAlmostAsync(TimeSpan.FromSeconds(2), restart: 2);
            await BackoffEndsAsync(TimeSpan.FromSeconds(2), starts: 3);

            _time.Advance(RestartBackoff.StableAfter);
            await CrashAndWaitAlmostAsync(TimeSpan.FromSeconds(1), restart: 3);
            await BackoffEndsAsync(TimeSpan.FromSeconds(1), starts: 4);
        }
        finally
        {
            await _runner.StopAsync();
        }
    }

    [Fact]
    public async Task ProbeFailsAfterReady_UnhealthyAtTheThreshold_RestartedAtTwiceIt()
    {
        _runner.Start();
        try
        {
            await StartedAndReadyAsync(1);
            _probe.Healthy = false;
            // The probe's n-th wait since Ready is pending before the clock moves past it: each move is one failed probe.
            for (var failure = 1; failure <= 2 * ProbeThreshold; failure++)
            {
                await UntilAsync(() => _time.Waits(ProbeInterval) >= failure, $"probe wait {failure} pending");
                _time.Advance(ProbeInterval);
                if (failure == ProbeThreshold)
                {
                    await UntilAsync(() => Latest.State == InstanceStates.Unhealthy, "Unhealthy at the threshold");
                    Assert.Equal("probe fake failed 2 times in a row", Latest.Reason);
                }
            }

            await UntilAsync(() => Latest.State == InstanceStates.Faulted, "Faulted at twice the threshold");
            Assert.Equal("failed its liveness probe (fake) 4 times in a row; restarting in 1 s (restart 1)", Latest.Reason);
            Assert.Contains(_driver.Stops, s => s.Pid == _driver.Last.Process.Pid && s.Grace == TimeSpan.FromSeconds(1));
        }
        finally
        {
            await _runner.StopAsync();
        }
    }

    [Fact]
    public async Task StopAsync_StopsTheProcessWithTheGracePeriod_ReportsStoppingThenStopped()
    {
        _runner.Start();
        await StartedAndReadyAsync(1);
        var pid = _driver.Last.Process.Pid;

        await _runner.StopAsync();

        Assert.Equal([InstanceStates.Stopping, InstanceStates.Stopped], _reports.TakeLast(2).Select(r => r.State));
        Assert.Equal([(pid, TimeSpan.FromSeconds(3))], _driver.Stops);
        Assert.Equal(["shop/web/0"], _driver.CleanedUp);
        Assert.Null(_runner.JournalEntry());
        Assert.Single(_driver.Started);
    }

    [Fact]
    public async Task Update_NewSettings_RewritesTheDescription_SignalsTheProcess_AndReportsTheNewRevision()
    {
        _runner.Start();
        try
        {
            await StartedAndReadyAsync(1);
            var (process, launch) = _driver.Last;
            var goal = _runner.Goal.Clone();
            goal.Settings["greeting"] = "hi";
            goal.Revision = 2;

            _runner.Update(goal);

            Assert.Equal([(process.Pid, Posix.SIGHUP)], _driver.Signals);
            Assert.Equal((InstanceStates.Ready, 2L), (Latest.State, Latest.Revision));
            Assert.Contains("\"hi\"", File.ReadAllText(Path.Combine(launch.Directory, "disk", "app", "heddle-instance.json")), StringComparison.Ordinal);
            Assert.Contains("greeting=hi", _runner.JournalEntry()?.SettingsKey, StringComparison.Ordinal);
        }
        finally
        {
            await _runner.StopAsync();
        }
    }
}
