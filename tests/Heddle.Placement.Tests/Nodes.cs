using Heddle.Placement.Cluster;

namespace Heddle.Placement.Tests;

internal static class Nodes
{
    public static NodeSpec Node(string name, string faultDomain, int cores = 4, int threads = 2, int memoryMiB = 16384, params (string Key, string Value)[] labels) =>
        new()
        {
            Name = name,
            FaultDomain = faultDomain,
            Cores = NodeSpec.UniformTopology(cores, threads),
            MemoryMiB = memoryMiB,
            Labels = labels.ToDictionary(l => l.Key, l => l.Value),
        };

    /// <summary><paramref name="perFaultDomain"/> nodes in each of <paramref name="faultDomains"/> fault domains fd0, fd1...</summary>
    public static List<NodeSpec> Grid(int faultDomains, int perFaultDomain, int cores = 4, int threads = 2, int memoryMiB = 16384) =>
        [.. Enumerable.Range(0, faultDomains).SelectMany(fd => Enumerable.Range(0, perFaultDomain).Select(i => Node($"n{fd}-{i}", $"fd{fd}", cores, threads, memoryMiB)))];

    public static PlacementRequest Request(string tenant, string role, int instances, int cpus, int memoryMiB = 1024, int upgradeDomains = 5, int from = 0) =>
        new()
        {
            Role = new RoleKey(tenant, "svc", role),
            Cpus = cpus,
            MemoryMiB = memoryMiB,
            Instances = PlacementRequest.Slots(from, instances, upgradeDomains),
        };
}
