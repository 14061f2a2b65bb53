using Heddle.Contracts.Timing;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Agent.Tests.Timing;

/// <summary>
/// The hollow process's one clock for all its nodes' timers: a timer fires at most one resolution late and never early,
/// a periodic one keeps its period without drifting, a changed or disposed one does not fire as it was, and one due
/// beyond a turn of the wheel waits for its time.
/// </summary>
public sealed class SharedClockTests
{
    private static readonly TimeSpan Resolution = TimeSpan.FromMilliseconds(10);

    private readonly FakeTimeProvider _time = new(DateTimeOffset.UnixEpoch);

    private readonly List<(string Name, double Ms)> _fired = [];

    /// <summary>A clock over the fake one whose due callbacks run at once, so that each is seen at the time it fired.</summary>
    private SharedClock Clock() => new(_time, Resolution, (callback, state) => callback(state));

    private TimerCallback Record(string name) => _ => _fired.Add((name, (_time.GetUtcNow() - DateTimeOffset.UnixEpoch).TotalMilliseconds));

    /// <summary>Advances the clock underneath a millisecond at a time; its wheel turns every 10 ms.</summary>
    private void Run(int milliseconds)
    {
        for (var i = 0; i < milliseconds; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(1));
        }
    }

    [Fact]
    public void AOneShotTimer_FiresOnce_NeverEarly_AtMostOneResolutionLate()
    {
        using var clock = Clock();
        using var a = clock.CreateTimer(Record("a"), null, TimeSpan.FromMilliseconds(25), Timeout.InfiniteTimeSpan);
        using var b = clock.CreateTimer(Record("b"), null, TimeSpan.Zero, Timeout.InfiniteTimeSpan);

        Run(200);
        var seen = _fired;

        Assert.Equal(["a", "b"], seen.Select(s => s.Name).Order());
        Assert.InRange(seen.Single(s => s.Name == "a").Ms, 25, 25 + Resolution.TotalMilliseconds + 1);
        Assert.InRange(seen.Single(s => s.Name == "b").Ms, 0, Resolution.TotalMilliseconds + 1);
    }

    [Fact]
    public void APeriodicTimer_KeepsItsPeriod_WithoutDrift()
    {
        using var clock = Clock();
        using var timer = clock.CreateTimer(Record("p"), null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));

        Run(1000);
        var seen = _fired;

        Assert.Equal(10, seen.Count);
        for (var i = 0; i < seen.Count; i++)
        {
            Assert.InRange(seen[i].Ms, (i + 1) * 100, ((i + 1) * 100) + Resolution.TotalMilliseconds);
        }
    }

    [Fact]
    public void AChangedTimer_FiresOnlyAtItsNewTime_AndADisposedOneNotAtAll()
    {
        using var clock = Clock();
        using var moved = clock.CreateTimer(Record("moved"), null, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(50));
        var gone = clock.CreateTimer(Record("gone"), null, TimeSpan.FromMilliseconds(50), Timeout.InfiniteTimeSpan);
        using var stopped = clock.CreateTimer(Record("stopped"), null, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(50));
        using var marker = clock.CreateTimer(Record("marker"), null, TimeSpan.FromMilliseconds(400), Timeout.InfiniteTimeSpan);

        Assert.True(moved.Change(TimeSpan.FromMilliseconds(300), Timeout.InfiniteTimeSpan));
        gone.Dispose();
        Assert.False(gone.Change(TimeSpan.FromMilliseconds(10), Timeout.InfiniteTimeSpan));
        Assert.True(stopped.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan));

        Run(500);
        var seen = _fired;

        Assert.Equal(["moved", "marker"], seen.Select(s => s.Name));
        Assert.InRange(seen[0].Ms, 300, 300 + Resolution.TotalMilliseconds);
    }

    [Fact]
    public void ATimerDueBeyondATurnOfTheWheel_WaitsForItsTime()
    {
        using var clock = Clock();
        using var late = clock.CreateTimer(Record("late"), null, TimeSpan.FromSeconds(12), Timeout.InfiniteTimeSpan); // the wheel turns in 5.12 s

        _time.Advance(TimeSpan.FromSeconds(11.9)); // one late turn: every slot up to now is taken at once
        Assert.Empty(_fired);
        Run(200);
        var seen = _fired;

        Assert.InRange(seen.Single().Ms, 12_000, 12_000 + Resolution.TotalMilliseconds);
    }

    [Fact]
    public async Task PeriodicTimerAndDelays_OnTheRealClock_RunOnThePool_NeverEarly()
    {
        using var clock = new SharedClock(TimeProvider.System, Resolution);
        using var periodic = new PeriodicTimer(TimeSpan.FromMilliseconds(20), clock);
        var started = TimeProvider.System.GetTimestamp();

        for (var i = 0; i < 3; i++)
        {
            Assert.True(await periodic.WaitForNextTickAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        await Task.Delay(TimeSpan.FromMilliseconds(30), clock).WaitAsync(TimeSpan.FromSeconds(30)); // the delay under test, with a deadline
        Assert.True(TimeProvider.System.GetElapsedTime(started) >= TimeSpan.FromMilliseconds(90)); // never early
    }
}
