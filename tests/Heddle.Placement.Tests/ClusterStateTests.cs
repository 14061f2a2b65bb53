using Heddle.Placement.Cluster;
using static Heddle.Placement.Tests.Nodes;

namespace Heddle.Placement.Tests;

/// <summary>
/// A view that lives on between placement passes: a service released and restored holds exactly what it held, its
/// spreading counts start again from what was restored, and a released service leaves nothing that another takes.
/// </summary>
public sealed class ClusterStateTests
{
    [Fact]
    public void AServiceReleasedAndRestored_HoldsWhatItHeld_AndSpreadsFromIt()
    {
        var state = new ClusterState(Grid(faultDomains: 3, perFaultDomain: 2), seed: 1);
        var allocator = new IndexedAllocator(state);
        var placed = allocator.Place(Request("t", "web", 6, cpus: 1)).Placed;
        var freeBefore = state.Utilisation();

        Assert.Equal(6, state.ReleaseService("svc"));
        Assert.Equal(0, state.Utilisation().UsedCpus);
        Assert.Empty(state.PlacementsOf(new RoleKey("t", "svc", "web")));
        foreach (var placement in placed)
        {
            Assert.True(state.Restore(placement with { FaultDomain = "" })); // as the store gives it: the view adds the fault domain
        }

        Assert.Equal(freeBefore, state.Utilisation());
        Assert.Equal(placed.OrderBy(p => p.Index).Select(p => (p.Node, p.FaultDomain, string.Join(",", p.Cpus))),
            state.PlacementsOf(new RoleKey("t", "svc", "web")).OrderBy(p => p.Index).Select(p => (p.Node, p.FaultDomain, string.Join(",", p.Cpus))));

        // Three more spread over the fault domains from the six restored (two in each): one more in each.
        var result = allocator.Place(Request("t", "web", 9, cpus: 1, from: 6)); // slots 6, 7 and 8
        Assert.Empty(result.Unplaced.Select(u => u.Why.ToString()));
        var more = result.Placed;
        Assert.Equal(["fd0", "fd1", "fd2"], more.Select(p => p.FaultDomain).Order());
        Assert.False(state.Restore(placed[0])); // its index is held: a second restore conflicts
    }

    [Fact]
    public void AReleasedService_LeavesNothingForAnother()
    {
        var state = new ClusterState(Grid(faultDomains: 2, perFaultDomain: 1), seed: 1);
        var allocator = new IndexedAllocator(state);
        allocator.Place(Request("t", "web", 4, cpus: 1));
        var other = new PlacementRequest { Role = new RoleKey("t", "other", "web"), Cpus = 1, MemoryMiB = 1024, Instances = PlacementRequest.Slots(0, 2, 5) };
        allocator.Place(other);

        Assert.Equal(4, state.ReleaseService("svc"));
        Assert.Equal(2, state.ReleaseService("other"));
        Assert.Equal(0, state.ReleaseService("svc")); // released already

        var again = allocator.Place(Request("t", "web", 2, cpus: 1)).Placed;
        Assert.Equal(2, again.Count);
        Assert.Equal(2, state.PlacementsOf(new RoleKey("t", "svc", "web")).Count);
        Assert.Empty(state.PlacementsOf(other.Role));
        Assert.Equal(["fd0", "fd1"], again.Select(p => p.FaultDomain).Order()); // counts began again from nothing
    }
}
