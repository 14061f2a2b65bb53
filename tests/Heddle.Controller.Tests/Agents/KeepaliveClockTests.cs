using Heddle.Controller.Agents;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Agents;

/// <summary>
/// One timer keeps every stream's keepalive going: each stream's turn comes once a period, the streams are spread over
/// it, a stream that leaves has no more turns, and one whose turn fails does not cost the others theirs.
/// </summary>
public sealed class KeepaliveClockTests
{
    [Fact]
    public void EachStreamsTurn_ComesOncePerPeriod_SpreadOverThePeriod()
    {
        var time = new FakeTimeProvider();
        using var clock = new KeepaliveClock(time, TimeSpan.FromSeconds(1));
        var counts = new int[KeepaliveClock.Slots * 2];
        var members = Enumerable.Range(0, counts.Length).Select(i => clock.Join(() => counts[i]++)).ToList();
        Assert.Equal(counts.Length, clock.Count);

        for (var step = 1; step <= KeepaliveClock.Slots * 3; step++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            // Two streams per tenth of the period: after each tenth exactly two more turns have come.
            Assert.Equal(2 * step, counts.Sum());
        }

        Assert.All(counts, c => Assert.Equal(3, c));
        members.ForEach(m => m.Dispose());
    }

    [Fact]
    public void AStreamThatLeft_HasNoMoreTurns_AndTheOthersKeepTheirs()
    {
        var time = new FakeTimeProvider();
        using var clock = new KeepaliveClock(time, TimeSpan.FromSeconds(1));
        var counts = new int[KeepaliveClock.Slots * 3];
        var members = Enumerable.Range(0, counts.Length).Select(i => clock.Join(() => counts[i]++)).ToList();

        // Leave from the middle, the end and the start of the turns' lists: the rest keep coming.
        foreach (var i in new[] { 12, counts.Length - 1, 0, 5 })
        {
            members[i].Dispose();
        }

        members[12].Dispose(); // twice is harmless
        Assert.Equal(counts.Length - 4, clock.Count);

        time.Advance(TimeSpan.FromSeconds(2));
        for (var i = 0; i < counts.Length; i++)
        {
            Assert.Equal(i is 12 or 0 or 5 || i == counts.Length - 1 ? 0 : 2, counts[i]);
        }
    }

    [Fact]
    public void ATurnThatThrows_DoesNotStopTheOthers()
    {
        var time = new FakeTimeProvider();
        using var clock = new KeepaliveClock(time, TimeSpan.FromSeconds(1));
        var counts = new int[KeepaliveClock.Slots];
        var members = Enumerable.Range(0, counts.Length).Select(i => clock.Join(() => counts[i]++)).ToList();
        using var failing = clock.Join(() => throw new InvalidOperationException("a stream's turn failing"));
        var more = Enumerable.Range(0, counts.Length).Select(i => clock.Join(() => counts[i]++)).ToList();

        time.Advance(TimeSpan.FromSeconds(1)); // on a timer's thread, an exception let through would end the process

        Assert.All(counts, c => Assert.Equal(2, c));
    }

    [Fact]
    public async Task ASessionsWriter_IsWokenForAKeepalive_WithoutAGoalStateBeingMade()
    {
        var computed = 0;
        var session = new AgentSession("n1", _ => { computed++; return null!; });
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var woken = session.WaitForChangeAsync(deadline.Token).AsTask();
        Assert.False(woken.IsCompleted);

        session.KeepaliveDue();
        Assert.True(await woken);
        Assert.True(session.Pending);
        Assert.True(session.TakeKeepalive());
        Assert.Null(session.TakeChanged()); // no change was marked: no goal state is made
        Assert.Equal(0, computed);
        Assert.False(session.Pending);
        Assert.False(session.WaitForChangeAsync(deadline.Token).AsTask().IsCompleted);

        // Both marked: both are taken after one wake, and a mark made after the wake was taken is still seen as pending.
        session.Changed();
        session.KeepaliveDue();
        Assert.True(session.TakeKeepalive());
        session.KeepaliveDue();
        session.TakeChanged();
        Assert.Equal(1, computed);
        Assert.True(session.Pending);
        Assert.True(session.TakeKeepalive());

        session.Close();
        Assert.False(await session.WaitForChangeAsync(deadline.Token));
    }
}
