using Heddle.LoadBalancer.LoadBalancing;

namespace Heddle.LoadBalancer.Tests;

public sealed class MaglevTableTests
{
    private static ulong[] Flows(int count)
    {
        var random = new Random(42);
        return [.. Enumerable.Range(0, count).Select(_ => (ulong)random.NextInt64())];
    }

    [Fact]
    public void Lookup_SpreadsFlowsEvenlyOverBackends()
    {
        var backends = Enumerable.Range(0, 10).Select(i => $"svc/web/{i}").ToList();
        var table = new MaglevTable(backends);

        var counts = Flows(200_000).GroupBy(table.Lookup).Select(g => g.Count()).ToList();

        Assert.Equal(10, counts.Count);
        Assert.All(counts, c => Assert.InRange(c, 20_000 * 0.95, 20_000 * 1.05));
    }

    [Fact]
    public void RemovingOneOfN_MovesAboutOneNthOfFlows_AndOnlyThoseOfTheRemovedBackend()
    {
        var backends = Enumerable.Range(0, 10).Select(i => $"svc/web/{i}").ToList();
        var before = new MaglevTable(backends);
        var after = new MaglevTable([.. backends.Where(b => b != "svc/web/3")]);
        var flows = Flows(100_000);

        var moved = 0;
        var movedFromOthers = 0;
        foreach (var flow in flows)
        {
            var was = before.Backends[before.Lookup(flow)];
            var now = after.Backends[after.Lookup(flow)];
            if (was != now)
            {
                moved++;
                movedFromOthers += was == "svc/web/3" ? 0 : 1;
            }
        }

        Assert.InRange(moved / (double)flows.Length, 0.08, 0.13);
        Assert.True(movedFromOthers / (double)flows.Length < 0.02, $"{movedFromOthers} flows of remaining backends moved");
    }

    [Fact]
    public void Lookup_NoBackends_IsMinusOne()
    {
        Assert.Equal(-1, new MaglevTable([]).Lookup(12345));
    }
}
