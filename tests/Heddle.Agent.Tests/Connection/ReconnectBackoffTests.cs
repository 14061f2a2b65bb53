using Heddle.Agent.Connection;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Agent.Tests.Connection;

/// <summary>On a fake clock: reconnect waits start at 0.2 s, double, and stop at a quarter of --fence-after (0.2–5 s).</summary>
public sealed class ReconnectBackoffTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(0, 5_000)]
    [InlineData(-1_000, 5_000)]
    [InlineData(100, 200)]
    [InlineData(4_000, 1_000)]
    [InlineData(10_000, 2_500)]
    [InlineData(60_000, 5_000)]
    public void Max_IsAQuarterOfTheFenceTime_Between200MsAnd5S_And5SWithoutFencing(int fenceAfterMs, int maxMs)
    {
        var backoff = new ReconnectBackoff(TimeSpan.FromMilliseconds(fenceAfterMs), new FakeTimeProvider());

        Assert.Equal(TimeSpan.FromMilliseconds(maxMs), backoff.Max);
        Assert.Equal(ReconnectBackoff.Initial, backoff.Current);
    }

    [Fact]
    public async Task WaitAsync_WaitsOnTheAgentsClock_ThenDoubles()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var backoff = new ReconnectBackoff(TimeSpan.FromSeconds(10), time);

        var wait = backoff.WaitAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMilliseconds(199));
        Assert.False(wait.IsCompleted);

        time.Advance(TimeSpan.FromMilliseconds(1));
        await wait.WaitAsync(Deadline);
        Assert.Equal(TimeSpan.FromMilliseconds(400), backoff.Current);
    }

    [Fact]
    public void Wait_WithJitter_IsBetweenHalfAndAllOfTheCurrentWait_AndNotAlwaysTheSame()
    {
        var backoff = new ReconnectBackoff(TimeSpan.FromSeconds(20), new FakeTimeProvider(), new Random(27));
        backoff.Refused();

        var waits = Enumerable.Range(0, 50).Select(_ => backoff.Wait()).ToList();

        Assert.All(waits, w => Assert.InRange(w, TimeSpan.FromMilliseconds(2_500), TimeSpan.FromSeconds(5)));
        Assert.True(waits.Distinct().Count() > 10);
    }

    [Theory]
    [InlineData(1, 15)]
    [InlineData(3, 5)]
    public void SilenceLimit_WithOneControllerToTry_IsLonger(int controllers, int seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), ControllerConnection.SilenceLimit(controllers));

    [Fact]
    public async Task WaitAsync_Repeated_DoublesUpToTheCap()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var backoff = new ReconnectBackoff(TimeSpan.FromSeconds(4), time);
        var waits = new List<double>();

        for (var i = 0; i < 5; i++)
        {
            waits.Add(backoff.Current.TotalMilliseconds);
            var wait = backoff.WaitAsync(CancellationToken.None);
            time.Advance(backoff.Current);
            await wait.WaitAsync(Deadline);
        }

        Assert.Equal(new double[] { 200, 400, 800, 1_000, 1_000 }, waits);
    }

    [Fact]
    public async Task Reset_AfterASession_StartsAgainAt200Ms_AndRefused_WaitsTheLongest()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var backoff = new ReconnectBackoff(TimeSpan.FromSeconds(10), time);
        var wait = backoff.WaitAsync(CancellationToken.None);
        time.Advance(ReconnectBackoff.Initial);
        await wait.WaitAsync(Deadline);

        backoff.Reset();
        Assert.Equal(ReconnectBackoff.Initial, backoff.Current);

        backoff.Refused();
        Assert.Equal(TimeSpan.FromMilliseconds(2_500), backoff.Current);
        wait = backoff.WaitAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMilliseconds(2_500));
        await wait.WaitAsync(Deadline);
        Assert.Equal(TimeSpan.FromMilliseconds(2_500), backoff.Current);
    }

    [Fact]
    public async Task WaitAsync_Cancelled_ThrowsAndKeepsTheWait()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var backoff = new ReconnectBackoff(TimeSpan.FromSeconds(10), time);
        using var stop = new CancellationTokenSource();

        var wait = backoff.WaitAsync(stop.Token);
        await stop.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(Deadline));
        Assert.Equal(ReconnectBackoff.Initial, backoff.Current);
    }
}
