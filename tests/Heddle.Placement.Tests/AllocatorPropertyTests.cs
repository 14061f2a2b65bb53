using CsCheck;
using Heddle.Placement.Checking;
using Heddle.Placement.Cluster;

namespace Heddle.Placement.Tests;

/// <summary>
/// Properties over random clusters and request streams. Each case is built from one generated seed, so a failure
/// prints a seed that reproduces it exactly.
/// </summary>
public sealed class AllocatorPropertyTests
{
    private static readonly string[] Allocators = [AllocatorNames.Indexed, AllocatorNames.Exhaustive];

    private static List<NodeSpec> RandomCluster(Random random)
    {
        var nodes = new List<NodeSpec>();
        var faultDomains = random.Next(1, 6);
        for (var fd = 0; fd < faultDomains; fd++)
        {
            for (var i = random.Next(1, 5); i > 0; i--)
            {
                nodes.Add(new NodeSpec
                {
                    Name = $"n{nodes.Count}",
                    FaultDomain = $"fd{fd}",
                    Cores = NodeSpec.UniformTopology(random.Next(1, 9), random.Next(1, 3)),
                    MemoryMiB = random.Next(1, 17) * 1024,
                    Labels = random.Next(3) == 0 ? new Dictionary<string, string> { ["ssd"] = "true" } : new Dictionary<string, string>(),
                    Condition = random.Next(8) switch { 0 => NodeCondition.Down, 1 => NodeCondition.Draining, _ => NodeCondition.Ready },
                });
            }
        }

        return nodes;
    }

    [Fact]
    public void RandomClustersAndRequestStreams_NeverBreakAHardRule()
    {
        Gen.Int.Sample(seed =>
        {
            foreach (var name in Allocators)
            {
                var random = new Random(seed);
                var nodes = RandomCluster(random);
                var state = new ClusterState(nodes, seed);
                var allocator = AllocatorNames.Create(name, state);
                var constraints = new Dictionary<RoleKey, IReadOnlyDictionary<string, string>>();
                for (var step = 0; step < 40; step++)
                {
                    var action = random.Next(10);
                    if (action < 6)
                    {
                        var role = new RoleKey($"t{random.Next(4)}", "svc", $"r{random.Next(3)}");
                        var existing = state.PlacementsOf(role).Select(p => p.Index).ToHashSet();
                        var wanted = random.Next(1, 10);
                        var ssd = constraints.TryGetValue(role, out var c) ? c : random.Next(4) == 0 ? new Dictionary<string, string> { ["ssd"] = "true" } : new Dictionary<string, string>();
                        constraints[role] = ssd;
                        var cpus = existing.Count > 0 ? state.PlacementsOf(role).First().Cpus.Count : random.Next(1, 9);
                        var result = allocator.Place(new PlacementRequest
                        {
                            Role = role,
                            Cpus = cpus,
                            MemoryMiB = random.Next(0, 5) * 512,
                            Instances = [.. Enumerable.Range(0, wanted).Where(i => !existing.Contains(i)).Select(i => new InstanceSlot(i, i % 3))],
                            Constraints = ssd,
                        });
                        var ready = state.NodeSpecs.Where(n => n.Condition == NodeCondition.Ready).Select(n => n.Name).ToHashSet();
                        Assert.All(result.Placed, p => Assert.Contains(p.Node, ready));
                        Assert.All(result.Unplaced, u => Assert.Equal(nodes.Count, u.Why.Reasons.Sum(r => r.Value)));
                    }
                    else if (action < 9 && state.Placements.Any())
                    {
                        var victim = state.Placements.ElementAt(random.Next(state.Placements.Count()));
                        Assert.True(state.Release(victim.Role, victim.Index));
                    }
                    else
                    {
                        state.SetCondition(nodes[random.Next(nodes.Count)].Name, (NodeCondition)random.Next(3));
                    }

                    var violations = HardRuleChecker.Check(nodes, state.Placements, role => constraints.GetValueOrDefault(role));
                    Assert.True(violations.Count == 0, $"{name}, seed {seed}, step {step}: {string.Join("; ", violations)}");
                }
            }
        }, iter: 300);
    }

    [Fact]
    public void AmpleCapacity_RolesSpreadWithSkewAtMostOne_AndNoFaultDomainHoldsOnlyOneUpgradeDomain()
    {
        Gen.Int.Sample(seed =>
        {
            foreach (var name in Allocators)
            {
                var random = new Random(seed);
                var faultDomains = random.Next(2, 7);
                var nodes = Enumerable.Range(0, faultDomains * random.Next(2, 5))
                    .Select(i => new NodeSpec { Name = $"n{i}", FaultDomain = $"fd{i % faultDomains}", Cores = NodeSpec.UniformTopology(32, 2), MemoryMiB = 1 << 20 })
                    .ToList();
                var state = new ClusterState(nodes, seed);
                var allocator = AllocatorNames.Create(name, state);
                for (var r = 0; r < 6; r++)
                {
                    var upgradeDomains = random.Next(1, 6);
                    var count = random.Next(1, 4 * faultDomains);
                    var role = new RoleKey($"t{random.Next(3)}", "svc", $"r{r}");
                    var result = allocator.Place(new PlacementRequest
                    {
                        Role = role, Cpus = random.Next(1, 5), MemoryMiB = 256, Instances = PlacementRequest.Slots(0, count, upgradeDomains),
                    });
                    Assert.Empty(result.Unplaced);
                    var placements = state.PlacementsOf(role);
                    Assert.True(SpreadMeasure.Skew(nodes, placements) <= 1, $"{name}, seed {seed}: role {role} skew > 1");
                    if (upgradeDomains > 1)
                    {
                        foreach (var fd in placements.GroupBy(p => p.FaultDomain).Where(g => g.Count() > 1))
                        {
                            Assert.True(fd.Select(p => p.UpgradeDomain).Distinct().Count() > 1,
                                $"{name}, seed {seed}: {count} instances, {upgradeDomains} UDs, {faultDomains} FDs: {fd.Key} holds only UD {fd.First().UpgradeDomain}");
                        }
                    }
                }
            }
        }, iter: 300);
    }
}
