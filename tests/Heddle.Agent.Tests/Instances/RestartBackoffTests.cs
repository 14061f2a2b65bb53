using Heddle.Agent.Instances;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Agent.Tests.Instances;

/// <summary>On a fake clock: restarts wait 1 s doubling to 5 min, and a run that lasted a minute starts the doubling afresh.</summary>
public sealed class RestartBackoffTests
{
    private static readonly TimeSpan Initial = TimeSpan.FromSeconds(1);

    [Fact]
    public void Failed_QuickFailuresInARow_DelaysDoubleUpToFiveMinutes()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var backoff = new RestartBackoff(Initial, time);
        var delays = new List<double>();
        for (var i = 0; i < 12; i++)
        {
            backoff.Started();
            time.Advance(TimeSpan.FromSeconds(5));
            delays.Add(backoff.Failed().TotalSeconds);
        }

        Assert.Equal([1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300], delays);
        Assert.Equal(12, backoff.Failures);
    }

    [Fact]
    public void Failed_AfterARunOfAMinute_BacksOffFromTheStartAgain_AndJustUnderAMinuteDoesNot()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var backoff = new RestartBackoff(Initial, time);
        for (var i = 0; i < 4; i++)
        {
            backoff.Started();
            backoff.Failed();
        }

        backoff.Started();
        time.Advance(RestartBackoff.StableAfter - TimeSpan.FromMilliseconds(1));
        Assert.Equal(TimeSpan.FromSeconds(16), backoff.Failed());

        backoff.Started();
        time.Advance(RestartBackoff.StableAfter);
        Assert.Equal(Initial, backoff.Failed());
        Assert.Equal(1, backoff.Failures);

        backoff.Started();
        Assert.Equal(TimeSpan.FromSeconds(2), backoff.Failed());
    }

    [Fact]
    public void Delay_FollowsTheConfiguredFirstWait()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(250), RestartBackoff.Delay(TimeSpan.FromMilliseconds(250), 1));
        Assert.Equal(TimeSpan.FromSeconds(2), RestartBackoff.Delay(TimeSpan.FromMilliseconds(250), 4));
        Assert.Equal(RestartBackoff.Max, RestartBackoff.Delay(TimeSpan.FromSeconds(10), 10));
    }
}
