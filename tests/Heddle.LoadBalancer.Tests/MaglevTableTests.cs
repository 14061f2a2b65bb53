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

    /// <summary>
    /// The table is the paper's, slot for slot: every backend in turn takes the next free slot of its permutation
    /// (offset + j × skip) mod M. Two balancers of different versions serving one VIP must build the same table from the
    /// same backends, so a faster build may not change a single slot.
    /// </summary>
    [Theory]
    [InlineData(1, 65_537)]
    [InlineData(3, 65_537)]
    [InlineData(100, 65_537)]
    [InlineData(7, 251)]
    [InlineData(250, 251)]
    public void TheTable_IsMaglevsPopulation_SlotForSlot(int count, int size)
    {
        var backends = Enumerable.Range(0, count).Select(i => $"s{i % 7}/web/{i}").ToList();
        var table = new MaglevTable(backends, size);

        var expected = Population(backends, size);
        for (var slot = 0; slot < size; slot++)
        {
            Assert.Equal(expected[slot], table.Lookup((ulong)slot));
        }
    }

    /// <summary>Maglev's population as the paper writes it (Eisenbud et al., NSDI 2016, pseudocode 1).</summary>
    private static int[] Population(IReadOnlyList<string> backends, int size)
    {
        var offset = backends.Select(b => (long)(MaglevTable.Hash(b, 0xA5A5A5A5) % (ulong)size)).ToArray();
        var skip = backends.Select(b => (long)(MaglevTable.Hash(b, 0x5A5A5A5A) % (ulong)(size - 1)) + 1).ToArray();
        var next = new long[backends.Count];
        var entry = Enumerable.Repeat(-1, size).ToArray();
        var filled = 0;
        while (true)
        {
            for (var i = 0; i < backends.Count; i++)
            {
                var c = (offset[i] + (next[i] * skip[i])) % size;
                while (entry[c] >= 0)
                {
                    next[i]++;
                    c = (offset[i] + (next[i] * skip[i])) % size;
                }

                entry[c] = i;
                next[i]++;
                if (++filled == size)
                {
                    return entry;
                }
            }
        }
    }

    [Fact]
    public void Lookup_NoBackends_IsMinusOne()
    {
        Assert.Equal(-1, new MaglevTable([]).Lookup(12345));
    }
}
