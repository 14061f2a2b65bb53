using Heddle.Agent.Connection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Agent.Tests.Connection;

/// <summary>On a fake clock: an agent silent past --fence-after stops its instances once, asks for a new session, and is unfenced when it hears again.</summary>
public sealed class FencingTests
{
    private static readonly TimeSpan FenceAfter = TimeSpan.FromSeconds(10);

    private sealed class Node
    {
        public long SilentSince { get; set; }

        public int Instances { get; set; } = 2;

        public int Fences { get; set; }

        public int Reconnects { get; set; }
    }

    private static (Fencing Fencing, Node Node, FakeTimeProvider Time) Make()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var node = new Node { SilentSince = ControllerConnection.Millis(time) };
        var fencing = new Fencing(FenceAfter, time, () => node.SilentSince, () => node.Instances,
            () => { node.Fences++; node.Instances = 0; return Task.CompletedTask; }, () => node.Reconnects++, NullLogger.Instance);
        return (fencing, node, time);
    }

    [Fact]
    public async Task SilentJustUnderTheFenceTime_NothingStops_AtTheFenceTime_TheInstancesStopOnce_AndASessionIsAskedFor()
    {
        var (fencing, node, time) = Make();

        time.Advance(FenceAfter - TimeSpan.FromMilliseconds(1));
        await fencing.CheckAsync();
        Assert.False(fencing.Fenced);
        Assert.Equal(0, node.Fences);

        time.Advance(TimeSpan.FromMilliseconds(1));
        await fencing.CheckAsync();
        Assert.True(fencing.Fenced);
        Assert.Equal((1, 1), (node.Fences, node.Reconnects));

        node.Instances = 1; // an instance started meanwhile would be stopped by the next fence, not this one's repeat
        time.Advance(TimeSpan.FromSeconds(30));
        await fencing.CheckAsync();
        Assert.Equal((1, 1), (node.Fences, node.Reconnects));
    }

    [Fact]
    public async Task HeardAgain_IsUnfenced_AndTheNextSilenceFencesAgain()
    {
        var (fencing, node, time) = Make();
        time.Advance(FenceAfter);
        await fencing.CheckAsync();
        Assert.True(fencing.Fenced);

        node.SilentSince = ControllerConnection.Millis(time); // a goal state or a keepalive
        node.Instances = 2;
        await fencing.CheckAsync();
        Assert.False(fencing.Fenced);

        time.Advance(FenceAfter);
        await fencing.CheckAsync();
        Assert.Equal(2, node.Fences);
    }

    [Fact]
    public async Task ANodeWithNothingRunning_IsNotFenced_AndZeroFenceTimeNeverFences()
    {
        var (fencing, node, time) = Make();
        node.Instances = 0;
        time.Advance(TimeSpan.FromMinutes(5));
        await fencing.CheckAsync();
        Assert.False(fencing.Fenced);

        var off = new Fencing(TimeSpan.Zero, time, () => 0, () => 5, () => throw new InvalidOperationException("fenced with --fence-after 0"), () => { }, NullLogger.Instance);
        await off.RunAsync(CancellationToken.None); // returns at once
        Assert.False(off.Fenced);
    }

    [Fact]
    public async Task RunAsync_ChecksOnTheAgentsClock_EveryTenthOfASecond()
    {
        var (fencing, node, time) = Make();
        using var stop = new CancellationTokenSource();
        var running = fencing.RunAsync(stop.Token);

        time.Advance(FenceAfter + TimeSpan.FromMilliseconds(100));
        await Heddle.Testing.Poll.UntilAsync(() => node.Fences == 1, TimeSpan.FromSeconds(10), "the timer's check to fence");

        await stop.CancelAsync();
        await running;
    }
}
