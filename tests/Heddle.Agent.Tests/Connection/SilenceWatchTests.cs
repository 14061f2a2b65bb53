using Heddle.Agent.Connection;

namespace Heddle.Agent.Tests.Connection;

/// <summary>
/// An agent hangs up on a controller silent for its limit, but not for the time its own process was stalled: the
/// controller's keepalives of that time wait unread in the stream.
/// </summary>
public sealed class SilenceWatchTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(15);

    [Fact]
    public void LooksOnTime_ASilenceLongerThanTheLimit_IsSilent()
    {
        var watch = new SilenceWatch(Limit, startMillis: 0);
        for (var second = 1; second <= 15; second++)
        {
            Assert.False(watch.Silent(second * 1000, heard: 0), $"silent after {second} s");
        }

        Assert.True(watch.Silent(16_000, heard: 0));
    }

    [Fact]
    public void AStallOfThisProcess_IsNotTheControllersSilence_ButSilenceAfterItIs()
    {
        var watch = new SilenceWatch(Limit, startMillis: 0);
        Assert.False(watch.Silent(1_000, heard: 500));

        // The next look came 20 s late: this process was paused, and nothing it could have read was read.
        Assert.False(watch.Silent(22_000, heard: 500));

        // Looked at on time after it, the silence counted is what came before the stall was due (1.5 s) and after it.
        var now = 22_000;
        for (var second = 1; second <= 13; second++)
        {
            Assert.False(watch.Silent(now += 1_000, heard: 500));
        }

        Assert.True(watch.Silent(now + 600, heard: 500)); // 15.1 s of it
    }

    [Fact]
    public void AWordHeardAfterAStall_StartsTheSilenceAfresh_WithoutTheStall()
    {
        var watch = new SilenceWatch(Limit, startMillis: 0);
        Assert.False(watch.Silent(21_000, heard: 0)); // 20 s late: a stall

        var now = 21_000;
        Assert.False(watch.Silent(now += 1_000, heard: 21_500));
        for (var second = 1; second <= 14; second++)
        {
            Assert.False(watch.Silent(now += 1_000, heard: 21_500));
        }

        Assert.True(watch.Silent(now + 600, heard: 21_500)); // 15.1 s after the word, the stall before it not counted
    }

    [Fact]
    public void ALookLateByLessThanTheStallMinimum_GivesNoCredit()
    {
        var watch = new SilenceWatch(Limit, startMillis: 0);
        var now = 0L;
        for (var look = 1; look <= 10; look++)
        {
            Assert.False(watch.Silent(now += 1_400, heard: 0)); // each look 0.4 s late
        }

        Assert.True(watch.Silent(now + 1_400, heard: 0)); // 15.4 s of silence, all of it counted
    }
}
