using Heddle.Contracts.Timing;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Agent.Tests.Timing;

/// <summary>
/// The hollow process's one clock for all its nodes' timers: a timer fires at most one resolution late and never early,
/// a periodic one keeps its period without drifting, a changed or disposed one does not fire as it was, and one due
/// beyond a turn of the wheel waits for its time, and a clock whose timers are far apart turns only when one is due.
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
    public void APeriodNotAMultipleOfTheResolution_DoesNotDrift()
    {
        using var clock = Clock();
        using var timer = clock.CreateTimer(Record("p"), null, TimeSpan.FromMilliseconds(15), TimeSpan.FromMilliseconds(15));

        Run(300);
        var seen = _fired;

        Assert.Equal(20, seen.Count);
        for (var i = 0; i < seen.Count; i++)
        {
            Assert.InRange(seen[i].Ms, (i + 1) * 15, ((i + 1) * 15) + Resolution.TotalMilliseconds);
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
    public void AClockWithTimersFarApart_TurnsOnlyWhenOneIsDue()
    {
        var counting = new CountingTime(_time);
        using var clock = new SharedClock(counting, Resolution, (callback, state) => callback(state));
        using var probe = clock.CreateTimer(Record("probe"), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        using var idle = clock.CreateTimer(Record("idle"), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);

        Run(5_000);
        var seen = _fired;

        Assert.Equal(5, seen.Count);
        Assert.All(seen, s => Assert.Equal("probe", s.Name));
        Assert.InRange(counting.Fired, 5, 10); // a turn for each second (and one more when the runtime's timer fires a little early), not one each 10 ms
    }

    [Fact]
    public void AClockIdleForMinutes_FiresATimerMadeThenAtItsTime()
    {
        using var clock = Clock();
        _time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromMilliseconds(7)); // nothing to turn for; then a timer made between two ticks
        using var later = clock.CreateTimer(Record("later"), null, TimeSpan.FromMilliseconds(50), Timeout.InfiniteTimeSpan);

        Run(100);
        var seen = _fired;

        Assert.InRange(seen.Single().Ms, 600_057, 600_057 + Resolution.TotalMilliseconds);
    }

    /// <summary>The fake clock, counting how often a timer made on it fires: how often the wheel turned.</summary>
    private sealed class CountingTime(FakeTimeProvider inner) : TimeProvider
    {
        private int _fired;

        public int Fired => Volatile.Read(ref _fired);

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(s =>
            {
                Interlocked.Increment(ref _fired);
                callback(s);
            }, state, dueTime, period);
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
