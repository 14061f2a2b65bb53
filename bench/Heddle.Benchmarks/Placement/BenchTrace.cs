using Heddle.Placement;
using Heddle.Placement.Cluster;

namespace Heddle.Benchmarks.Placement;

/// <summary>The benchmark's cluster and workload, generated from a seed so every run and every allocator sees the same.</summary>
internal static class BenchTrace
{
    public static List<NodeSpec> Cluster(int nodes, int faultDomains, int cores, int threads, int memoryMiB)
    {
        var topology = NodeSpec.UniformTopology(cores, threads);
        return [.. Enumerable.Range(0, nodes).Select(i => new NodeSpec
        {
            Name = $"g{i + 1}", FaultDomain = $"fd{(i % faultDomains) + 1}", Cores = topology, MemoryMiB = memoryMiB,
        })];
    }

    /// <summary>
    /// Roles of 1–24 instances (upgrade domains 1–5) for 500 tenants, sizes 1, 2, 4 and 8 logical CPUs equally often
    /// and 2 GiB per CPU, until <paramref name="instances"/> instances. With 10,000 nodes of 32 CPUs the demand
    /// (≈375,000 CPUs) exceeds the capacity (320,000), so the run reaches its first failure.
    /// </summary>
    public static List<PlacementRequest> Requests(int instances, int tenants, int seed)
    {
        var random = new Random(seed);
        int[] sizes = [1, 2, 4, 8];
        var requests = new List<PlacementRequest>();
        var total = 0;
        while (total < instances)
        {
            var count = Math.Min(random.Next(1, 25), instances - total);
            var cpus = sizes[random.Next(sizes.Length)];
            var tenant = random.Next(tenants);
            requests.Add(new PlacementRequest
            {
                Role = new RoleKey($"tenant{tenant}", $"svc{requests.Count}", "role"),
                Cpus = cpus,
                MemoryMiB = cpus * 2048,
                Instances = PlacementRequest.Slots(0, count, random.Next(1, 6)),
            });
            total += count;
        }

        return requests;
    }
}
