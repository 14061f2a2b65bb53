using System.Collections.Concurrent;
using Heddle.Agent.Connection;
using Heddle.Agent.Instances;
using Heddle.Agent.Tests.Instances;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Api;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heddle.Agent.Tests.Connection;

/// <summary>
/// Fencing wired as <see cref="AgentHost"/> wires it — the fence clock's silence, the supervisor's instances, its
/// fence — over a fake driver and a fake clock: the instances stop when the controller has been silent for the fence
/// time and not a millisecond before, and start again with the next goal state.
/// </summary>
public sealed class FencingInstancesTests : IDisposable
{
    private static readonly TimeSpan FenceAfter = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private readonly TempDirectory _state = new("heddle-fencing-");
    private readonly HttpClient _http = new();
    private readonly FakeDriver _driver = new();
    private readonly WatchedTime _time = new();
    private readonly ConcurrentDictionary<string, InstanceReport> _reports = new();
    private readonly InstanceSupervisor _supervisor;
    private readonly FenceClock _clock;
    private readonly Fencing _fencing;
    private int _reconnects;

    public FencingInstancesTests()
    {
        var context = FakeNode.Context(_state, _driver, new FakeProbe(), _time, _http);
        _supervisor = new InstanceSupervisor(context, new InstanceJournal(_state.Combine("agent", "instances.json")), r => _reports[r.InstanceId] = r);
        _clock = new FenceClock(_time, controllers: 1);
        _fencing = new Fencing(FenceAfter, _time, () => _clock.SilentSince, () => _supervisor.Count, () => _supervisor.FenceAsync(TimeSpan.FromSeconds(1)),
            () => Interlocked.Increment(ref _reconnects), NullLogger.Instance);
    }

    public void Dispose()
    {
        _http.Dispose();
        _state.Dispose();
    }

    private static GoalState Goal() => new() { Instances = { FakeNode.Goal(0), FakeNode.Goal(1) } };

    private Task AllAsync(string state, int count) =>
        Poll.UntilAsync(() => _reports.Count == 2 && _reports.Values.All(r => r.State == state) && _driver.Started.Count == count, Deadline, $"both instances {state}");

    [Fact]
    public async Task CheckAsync_SilentJustUnderTheFenceTime_InstancesRun_AtIt_TheyStop_AndTheNextGoalStateStartsThemAgain()
    {
        try
        {
            _supervisor.Apply(Goal());
            await AllAsync(InstanceStates.Ready, 2);
            _clock.Heard(); // the goal state's arrival

            _time.Advance(FenceAfter - TimeSpan.FromMilliseconds(1));
            await _fencing.CheckAsync();
            Assert.False(_fencing.Fenced);
            Assert.Empty(_driver.Stops);
            Assert.All(_reports.Values, r => Assert.Equal(InstanceStates.Ready, r.State));

            _time.Advance(TimeSpan.FromMilliseconds(1));
            await _fencing.CheckAsync();
            Assert.True(_fencing.Fenced);
            Assert.All(_reports.Values, r => Assert.Equal(InstanceStates.Stopped, r.State));
            Assert.Equal([TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)], _driver.Stops.Select(s => s.Grace));
            Assert.Equal(0, _supervisor.Count);
            Assert.Equal(1, _reconnects);

            _clock.Heard(); // the controller answers the new session with the goal state again
            await _fencing.CheckAsync();
            Assert.False(_fencing.Fenced);
            _supervisor.Apply(Goal());
            await AllAsync(InstanceStates.Ready, 4);
        }
        finally
        {
            await _supervisor.StopAllAsync();
        }
    }

    [Fact]
    public async Task RunAsync_TicksOnTheAgentsClock_AdvancingItPastTheFenceTimeFences_WithNoRealWait()
    {
        using var stop = new CancellationTokenSource();
        try
        {
            _supervisor.Apply(Goal());
            await AllAsync(InstanceStates.Ready, 2);
            _clock.Heard();
            var loop = _fencing.RunAsync(stop.Token);

            _time.Advance(FenceAfter);
            // A new session is asked for once the fence is done.
            await Poll.UntilAsync(() => Volatile.Read(ref _reconnects) == 1, Deadline, "fenced and a new session asked for");
            Assert.True(_fencing.Fenced);
            Assert.All(_reports.Values, r => Assert.Equal(InstanceStates.Stopped, r.State));

            await stop.CancelAsync();
            await loop;
        }
        finally
        {
            await _supervisor.StopAllAsync();
        }
    }
}
