using Heddle.Placement.Checking;
using Heddle.Placement.Cluster;
using static Heddle.Placement.Tests.Nodes;

namespace Heddle.Placement.Tests;

public sealed class AllocatorTests
{
    public static TheoryData<string> Allocators => [AllocatorNames.Indexed, AllocatorNames.Exhaustive];

    private static (ClusterState State, IAllocator Allocator) Cluster(IEnumerable<NodeSpec> nodes, string allocator = AllocatorNames.Indexed, int seed = 1)
    {
        var state = new ClusterState(nodes, seed);
        return (state, AllocatorNames.Create(allocator, state));
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_ContainerRole_GoesOnlyWhereTheDriverIsAvailable_AndSaysSoWhenNowhere(string name)
    {
        var containers = new HashSet<string>(StringComparer.Ordinal) { "process", "container" };
        var (_, allocator) = Cluster([Node("n1", "fd0"), Node("n2", "fd1") with { Drivers = containers }, Node("n3", "fd2")], name);
        var (_, nowhere) = Cluster([Node("n1", "fd0"), Node("n2", "fd1"), Node("n3", "fd2")], name);

        var placed = allocator.Place(Request("t", "box", 2, cpus: 1) with { Driver = "container" });
        var refused = nowhere.Place(Request("t", "box", 1, cpus: 1) with { Driver = "container" });

        Assert.All(placed.Placed, p => Assert.Equal("n2", p.Node));
        Assert.Equal(2, placed.Placed.Count);
        Assert.Equal("3 nodes: 3 container driver unavailable", Assert.Single(refused.Unplaced).Why.ToString());
    }

    [Fact]
    public void Check_AContainerOnANodeWithoutTheDriver_IsAViolation()
    {
        var node = Node("n1", "fd0");
        var placement = new Placement(new RoleKey("t", "svc", "box"), 0, 0, "n1", "fd0", [0], 64);

        var violations = HardRuleChecker.Check([node], [placement], driverOf: _ => "container");

        Assert.Equal("t/svc/box/0 runs with driver 'container' but node 'n1' can run only process", Assert.Single(violations));
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_TwoCpusOnAFreshNode_TakesBothThreadsOfOnePhysicalCore(string name)
    {
        var (_, allocator) = Cluster([Node("n1", "fd0", cores: 4, threads: 2)], name);

        var placement = Assert.Single(allocator.Place(Request("t", "web", 1, cpus: 2)).Placed);

        Assert.Equal([0, 4], placement.Cpus.Order());
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_OneCpuOnAFreshNode_TakesCpuZero(string name)
    {
        var (_, allocator) = Cluster([Node("n1", "fd0", cores: 4, threads: 2)], name);

        Assert.Equal([0], Assert.Single(allocator.Place(Request("t", "web", 1, cpus: 1)).Placed).Cpus);
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_SecondTenant_NeverGetsTheIdleSiblingOfAnotherTenantsCore(string name)
    {
        var (_, allocator) = Cluster([Node("n1", "fd0", cores: 2, threads: 2)], name);
        allocator.Place(Request("a", "web", 1, cpus: 1));

        var b = Assert.Single(allocator.Place(Request("b", "web", 1, cpus: 2)).Placed);

        Assert.Equal([1, 3], b.Cpus.Order());
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_SameTenant_FillsItsOwnIdleSiblingBeforeBreakingAWholeCore(string name)
    {
        var (_, allocator) = Cluster([Node("n1", "fd0", cores: 2, threads: 2)], name);
        allocator.Place(Request("a", "web", 1, cpus: 1));

        var again = Assert.Single(allocator.Place(Request("a", "api", 1, cpus: 1)).Placed);

        Assert.Equal([2], again.Cpus);
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_OnlyIdleSiblingsOfOtherTenantsLeft_ExplainsTheIsolationRule(string name)
    {
        var (_, allocator) = Cluster([Node("n1", "fd0", cores: 2, threads: 2)], name);
        allocator.Place(Request("a", "web", 2, cpus: 1, upgradeDomains: 1)); // a fills both threads of core 0
        allocator.Place(Request("c", "web", 1, cpus: 1));                    // c takes core 1, leaving its sibling idle

        var result = allocator.Place(Request("b", "web", 1, cpus: 1));

        var unplaced = Assert.Single(result.Unplaced);
        Assert.Equal("1 node: 1 free cores only beside another tenant's threads", unplaced.Why.ToString());
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_NoRoom_ExplainsInCountsPerRule(string name)
    {
        var nodes = new List<NodeSpec>
        {
            Node("small", "fd0", cores: 1, threads: 2),
            Node("tiny-memory", "fd0", cores: 8, memoryMiB: 512),
            Node("down", "fd1", cores: 8) with { Condition = NodeCondition.Down },
            Node("draining", "fd1", cores: 8) with { Condition = NodeCondition.Draining },
        };
        var (_, allocator) = Cluster(nodes, name);

        var result = allocator.Place(Request("t", "web", 1, cpus: 4, memoryMiB: 1024));

        Assert.Empty(result.Placed);
        Assert.Equal("4 nodes: 2 down or draining, 1 not enough free memory, 1 not enough free cores", Assert.Single(result.Unplaced).Why.ToString());
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_WithConstraints_UsesOnlyLabelledNodesAndExplainsTheRest(string name)
    {
        var nodes = new List<NodeSpec> { Node("plain", "fd0"), Node("ssd", "fd1", labels: ("ssd", "true")), Node("hdd", "fd2", labels: ("ssd", "false")) };
        var (_, allocator) = Cluster(nodes, name);
        var request = Request("t", "db", 2, cpus: 4) with { Constraints = new Dictionary<string, string> { ["ssd"] = "true" } };

        var result = allocator.Place(request);

        Assert.All(result.Placed, p => Assert.Equal("ssd", p.Node));
        Assert.Equal(2, result.Placed.Count);
        var more = allocator.Place(Request("t", "db", 3, cpus: 4, from: 2) with { Constraints = request.Constraints });
        Assert.Equal("3 nodes: 2 without the required labels, 1 not enough free cores", Assert.Single(more.Unplaced).Why.ToString());
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_DownAndDrainingNodes_ReceiveNothing(string name)
    {
        var nodes = Grid(faultDomains: 3, perFaultDomain: 2);
        var (state, allocator) = Cluster(nodes, name);
        state.SetCondition("n0-0", NodeCondition.Down);
        state.SetCondition("n1-1", NodeCondition.Draining);

        var result = allocator.Place(Request("t", "web", 20, cpus: 1));

        Assert.DoesNotContain(result.Placed, p => p.Node is "n0-0" or "n1-1");
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_RoleAcrossFaultDomains_CountsDifferByAtMostOne(string name)
    {
        var (_, allocator) = Cluster(Grid(faultDomains: 4, perFaultDomain: 3), name);

        var result = allocator.Place(Request("t", "web", 10, cpus: 1));

        var counts = result.Placed.GroupBy(p => p.FaultDomain).Select(g => g.Count()).ToList();
        Assert.Equal(4, counts.Count);
        Assert.True(counts.Max() - counts.Min() <= 1, string.Join(",", counts));
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_UpgradeDomainNeverHoldsAllOfAFaultDomainsInstances(string name)
    {
        var (_, allocator) = Cluster(Grid(faultDomains: 3, perFaultDomain: 2), name);

        var placed = allocator.Place(Request("t", "web", 6, cpus: 1, upgradeDomains: 3)).Placed;

        foreach (var faultDomain in placed.GroupBy(p => p.FaultDomain))
        {
            Assert.True(faultDomain.Select(p => p.UpgradeDomain).Distinct().Count() > 1,
                $"{faultDomain.Key} holds only upgrade domain {faultDomain.First().UpgradeDomain}: updating it would empty the fault domain");
        }
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_FaultDomainFull_SpreadsOverTheOthersAndStillPlaces(string name)
    {
        var nodes = new List<NodeSpec> { Node("a", "fd0", cores: 1, threads: 1), Node("b", "fd1", cores: 8, threads: 1), Node("c", "fd2", cores: 8, threads: 1) };
        var (_, allocator) = Cluster(nodes, name);

        var placed = allocator.Place(Request("t", "web", 7, cpus: 1)).Placed;

        Assert.Equal(7, placed.Count);
        Assert.Equal([1, 3, 3], placed.GroupBy(p => p.FaultDomain).Select(g => g.Count()).Order());
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_MissingInstancesOfARole_KeepsTheExistingOnesWhereTheyAre(string name)
    {
        var (state, allocator) = Cluster(Grid(faultDomains: 3, perFaultDomain: 2), name);
        var first = allocator.Place(Request("t", "web", 3, cpus: 1)).Placed;
        state.Release(first[1].Role, 1);

        var refill = allocator.Place(Request("t", "web", 2, cpus: 1) with { Instances = [new InstanceSlot(1, 1), new InstanceSlot(3, 3)] }).Placed;

        Assert.Equal(4, state.PlacementsOf(first[0].Role).Count);
        Assert.Equal(first[0], state.PlacementsOf(first[0].Role).Single(p => p.Index == 0));
        Assert.Equal(first[2], state.PlacementsOf(first[0].Role).Single(p => p.Index == 2));
        Assert.Equal([1, 3], refill.Select(p => p.Index));
        Assert.True(SpreadMeasure.Skew(state.NodeSpecs.ToList(), state.PlacementsOf(first[0].Role)) <= 1);
    }

    [Theory]
    [MemberData(nameof(Allocators))]
    public void Place_PacksSmallInstancesOntoFewNodes_LeavingWholeNodesFree(string name)
    {
        var (state, allocator) = Cluster([Node("a", "fd0", cores: 4, threads: 2), Node("b", "fd0", cores: 4, threads: 2)], name);

        allocator.Place(Request("t", "web", 4, cpus: 2));

        Assert.Single(state.Placements.Select(p => p.Node).Distinct());
        Assert.Single(allocator.Place(Request("u", "big", 1, cpus: 8)).Placed);
    }

    [Fact]
    public void Restore_ExistingPlacement_KeepsItsExactCpusAndBlocksThemForOthers()
    {
        var (state, allocator) = Cluster([Node("a", "fd0", cores: 2, threads: 2)]);
        var existing = new Placement(new RoleKey("t", "svc", "web"), 0, 0, "a", "fd0", [1], 512);

        Assert.True(state.Restore(existing));
        Assert.False(state.Restore(existing with { Role = new RoleKey("u", "svc", "web") }));

        var other = Assert.Single(allocator.Place(Request("u", "web", 1, cpus: 2)).Placed);
        Assert.Equal([0, 2], other.Cpus.Order());
    }

    [Fact]
    public void Place_SameSeed_GivesTheSamePlan()
    {
        static IReadOnlyList<Placement> Run(int seed)
        {
            var (_, allocator) = Cluster(Grid(faultDomains: 4, perFaultDomain: 10), seed: seed);
            return [.. Enumerable.Range(0, 10).SelectMany(i => allocator.Place(Request($"t{i}", "web", 7, cpus: 1 + (i % 3))).Placed)];
        }

        Assert.Equal(Run(7).Select(p => (p.Node, string.Join(',', p.Cpus))), Run(7).Select(p => (p.Node, string.Join(',', p.Cpus))));
    }

    [Fact]
    public void Place_ZeroCpus_IsRejectedAsABadRequest()
    {
        var (_, allocator) = Cluster([Node("a", "fd0")]);

        Assert.Throws<ArgumentException>(() => allocator.Place(Request("t", "web", 1, cpus: 0)));
    }
}
