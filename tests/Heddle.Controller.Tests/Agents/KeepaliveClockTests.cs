using Heddle.Controller.Agents;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Agents;

/// <summary>One timer keeps every stream's keepalive going: each stream's turn comes once a period, and the streams are spread over it.</summary>
public sealed class KeepaliveClockTests
{
    [Fact]
    public void EachTurn_ComesOncePerPeriod_AndStreamsTakeTheTurnsInRotation()
    {
        var time = new FakeTimeProvider();
        using var clock = new KeepaliveClock(time, TimeSpan.FromSeconds(1));
        var turns = Enumerable.Range(0, KeepaliveClock.Slots * 2).Select(_ => clock.Join()).ToList();
        Assert.Equal(KeepaliveClock.Slots, turns.Distinct().Count());
        Assert.All(turns.GroupBy(t => t), g => Assert.Equal(2, g.Count()));

        var counts = new int[KeepaliveClock.Slots];
        var waiting = Enumerable.Range(0, KeepaliveClock.Slots).Select(clock.Next).ToArray();
        for (var step = 0; step < KeepaliveClock.Slots * 3; step++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            for (var turn = 0; turn < KeepaliveClock.Slots; turn++)
            {
                if (waiting[turn].IsCompleted)
                {
                    counts[turn]++;
                    waiting[turn] = clock.Next(turn);
                }
            }

            // After each tenth of the period exactly as many turns have come as tenths have passed.
            Assert.Equal(step + 1, counts.Sum());
        }

        Assert.All(counts, c => Assert.Equal(3, c));
        Assert.False(clock.Next(0).IsCompleted); // a stream that asks again waits for the next coming
    }
}
