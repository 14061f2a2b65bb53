using Heddle.Agent.Connection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Agent.Tests.Connection;

/// <summary>On a fake clock: silence runs from the last word, or from the refusals when every controller has refused since.</summary>
public sealed class FenceClockTests
{
    private static readonly TimeSpan FenceAfter = TimeSpan.FromSeconds(10);

    private static long At(FakeTimeProvider time) => FenceClock.Millis(time);

    /// <summary>
    /// A clock whose monotonic timestamp reads as a host a day after boot, as the system one does: never refused is
    /// recorded as 0, and Millis multiplies before it divides, so a timestamp as large as today's ticks would not do.
    /// </summary>
    private static FakeTimeProvider Booted() => new(DateTimeOffset.MinValue + TimeSpan.FromDays(1));

    [Fact]
    public void Millis_OfAHostUpForYears_StayPositiveAndCountOn()
    {
        // A fake clock's timestamp is today's ticks; Linux's passes the same range after 106 days of uptime.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 4, 0, 0, 0, TimeSpan.Zero));
        var clock = new FenceClock(time, controllers: 1);
        var start = clock.Now;

        time.Advance(TimeSpan.FromSeconds(12));

        Assert.True(start > 0, $"Millis read {start}");
        Assert.Equal(start + 12_000, clock.Now);
        Assert.True(clock.Now - clock.SilentSince >= FenceAfter.TotalMilliseconds, "12 s of silence counts past a 10 s fence");
    }

    [Fact]
    public void New_SilentSinceTheAgentsStart_AndTimePassingDoesNotMoveIt()
    {
        var time = Booted();
        var start = At(time);
        var clock = new FenceClock(time, controllers: 1);

        time.Advance(TimeSpan.FromSeconds(7));

        Assert.Equal((start, start), (clock.LastHeard, clock.SilentSince));
        Assert.Equal(start + 7_000, clock.Now);
    }

    [Fact]
    public void Heard_MovesTheSilenceToNow()
    {
        var time = Booted();
        var clock = new FenceClock(time, controllers: 2);
        time.Advance(TimeSpan.FromSeconds(3));

        var heard = clock.Heard();

        Assert.Equal(At(time), heard);
        Assert.Equal(heard, clock.LastHeard);
        Assert.Equal(heard, clock.SilentSince);
    }

    [Fact]
    public void Refused_BySomeControllersOnly_SilenceStillRunsFromTheLastWord()
    {
        var time = Booted();
        var clock = new FenceClock(time, controllers: 2);
        var heard = clock.Heard();

        time.Advance(TimeSpan.FromSeconds(3));
        clock.Refused(0);
        time.Advance(TimeSpan.FromSeconds(3));
        clock.Refused(2); // counted round the list: controller 0 again

        Assert.Equal(heard, clock.SilentSince);
    }

    [Fact]
    public void Refused_ByEveryControllerSinceTheLastWord_SilenceRunsFromTheEarliestOfTheirLatestRefusals()
    {
        var time = Booted();
        var clock = new FenceClock(time, controllers: 2);
        clock.Heard();

        time.Advance(TimeSpan.FromSeconds(3));
        clock.Refused(0);
        var first = At(time);
        time.Advance(TimeSpan.FromSeconds(2));
        clock.Refused(1);
        var second = At(time);
        Assert.Equal(first, clock.SilentSince);

        time.Advance(TimeSpan.FromSeconds(2));
        clock.Refused(0);
        Assert.Equal(second, clock.SilentSince);
    }

    [Fact]
    public void Refused_BeforeTheLastWord_DoesNotCount()
    {
        var time = Booted();
        var clock = new FenceClock(time, controllers: 1);
        clock.Refused(0);
        time.Advance(TimeSpan.FromSeconds(1));
        var heard = clock.Heard();
        time.Advance(TimeSpan.FromSeconds(4));

        Assert.Equal(heard, clock.SilentSince);
    }

    [Fact]
    public async Task WithFencing_AControllerRestartThatRefuses_KeepsTheInstances_ButAPartitionOfTheSameLengthStopsThem()
    {
        var restartTime = Booted();
        var restart = new FenceClock(restartTime, controllers: 1);
        var restartFences = 0;
        var restartFencing = new Fencing(FenceAfter, restartTime, () => restart.SilentSince, () => 2, () => { restartFences++; return Task.CompletedTask; }, () => { }, NullLogger.Instance);

        var partitionTime = Booted();
        var partition = new FenceClock(partitionTime, controllers: 1);
        var partitionFences = 0;
        var partitionFencing = new Fencing(FenceAfter, partitionTime, () => partition.SilentSince, () => 2, () => { partitionFences++; return Task.CompletedTask; }, () => { }, NullLogger.Instance);

        restart.Heard();
        partition.Heard();
        for (var second = 1; second <= 12; second++)
        {
            restartTime.Advance(TimeSpan.FromSeconds(1));
            partitionTime.Advance(TimeSpan.FromSeconds(1));
            restart.Refused(0); // each reconnect attempt finds the port closed
            await restartFencing.CheckAsync();
            await partitionFencing.CheckAsync();
        }

        Assert.Equal(0, restartFences);
        Assert.False(restartFencing.Fenced);
        Assert.Equal(1, partitionFences);
        Assert.True(partitionFencing.Fenced);
    }
}
