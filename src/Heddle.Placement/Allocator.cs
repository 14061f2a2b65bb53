using Heddle.Placement.Cluster;
using Heddle.Placement.Feasibility;
using Heddle.Placement.Ranking;

namespace Heddle.Placement;

/// <summary>A way of choosing nodes; the implementations differ in speed, not in the rules they keep.</summary>
public interface IAllocator
{
    string Name { get; }

    /// <summary>Places what it can of the request into the state and says why the rest could not be placed.</summary>
    PlacementResult Place(PlacementRequest request);
}

public static class AllocatorNames
{
    /// <summary>The production allocator: indexes instead of scanning (<see cref="IndexedAllocator"/>).</summary>
    public const string Indexed = "indexed";

    /// <summary>The baseline: scores every feasible node for every instance (<see cref="ExhaustiveAllocator"/>).</summary>
    public const string Exhaustive = "exhaustive";

    public static IAllocator Create(string name, ClusterState state) => name switch
    {
        Indexed => new IndexedAllocator(state),
        Exhaustive => new ExhaustiveAllocator(state),
        _ => throw new ArgumentException($"no allocator named '{name}'; use {Indexed} or {Exhaustive}", nameof(name)),
    };
}

/// <summary>
/// The placement pipeline, per instance (see README.md in this folder):
///   spread   — pick the fault domain the soft spreading rules rank first (<see cref="FaultDomainSpread"/>);
///   feasible — inside it, only nodes passing every hard rule (<see cref="FeasibilityChecks"/>);
///   pack     — the least fragmenting of those (<see cref="BinPack"/>);
///   fallback — if the fault domain has no feasible node, rule it out for this request and take the next;
///   explain  — if no fault domain is left, count per rule why every node said no.
/// Spread comes before packing because losing a fault domain must not take out more of a role than necessary;
/// packing only decides among nodes the spreading rules consider equal.
/// </summary>
public sealed class IndexedAllocator(ClusterState state) : IAllocator
{
    public string Name => AllocatorNames.Indexed;

    public PlacementResult Place(PlacementRequest request)
    {
        PlacementValidation.Check(request);
        var ask = new Ask(state.TenantId(request.Role.Tenant), request.Cpus, request.MemoryMiB, request.Constraints, request.Driver);
        var role = state.Role(request.Role);

        // Capacity only shrinks while one request is placed, so a fault domain that cannot take one instance
        // cannot take the next either.
        var ruledOut = new bool[state.FaultDomainCount];
        var spread = new FaultDomainSpread(state, role, request.Instances);
        var placed = new List<Placement>(request.Instances.Count);
        List<Unplaced>? unplaced = null;
        foreach (var slot in request.Instances)
        {
            spread.Next();
            NodeState? node = null;
            while (node is null)
            {
                var faultDomain = spread.Choose(ruledOut);
                if (faultDomain < 0)
                {
                    break;
                }

                node = BinPack.FindNode(state, faultDomain, ask);
                if (node is null)
                {
                    ruledOut[faultDomain] = true;
                }
            }

            if (node is null)
            {
                (unplaced ??= []).Add(new Unplaced(request.Role, slot.Index, slot.UpgradeDomain, FeasibilityChecks.Explain(state.Nodes, ask)));
                continue;
            }

            placed.Add(state.Commit(node, ask.Tenant, request, slot));
        }

        return new PlacementResult(placed, unplaced ?? []);
    }
}

/// <summary>
/// The baseline a scheduler that scores 100% of nodes would be: every node is tested against every hard rule for
/// every instance; the spreading rules pick among the fault domains that have a feasible node, and the least
/// fragmenting feasible node of that fault domain is taken. Same rules as <see cref="IndexedAllocator"/>, no indexes.
/// </summary>
public sealed class ExhaustiveAllocator(ClusterState state) : IAllocator
{
    public string Name => AllocatorNames.Exhaustive;

    public PlacementResult Place(PlacementRequest request)
    {
        PlacementValidation.Check(request);
        var ask = new Ask(state.TenantId(request.Role.Tenant), request.Cpus, request.MemoryMiB, request.Constraints, request.Driver);
        var spread = new FaultDomainSpread(state, state.Role(request.Role), request.Instances);
        var placed = new List<Placement>(request.Instances.Count);
        var best = new NodeState?[state.FaultDomainCount];
        var noFeasibleNode = new bool[state.FaultDomainCount];
        List<Unplaced>? unplaced = null;
        foreach (var slot in request.Instances)
        {
            spread.Next();
            Array.Clear(best);
            foreach (var node in state.Nodes)
            {
                if (FeasibilityChecks.Fits(node, ask) && (best[node.FaultDomain] is not { } current || LessFragmenting(node, current, ask)))
                {
                    best[node.FaultDomain] = node;
                }
            }

            for (var fd = 0; fd < best.Length; fd++)
            {
                noFeasibleNode[fd] = best[fd] is null;
            }

            var faultDomain = spread.Choose(noFeasibleNode);
            if (faultDomain < 0)
            {
                (unplaced ??= []).Add(new Unplaced(request.Role, slot.Index, slot.UpgradeDomain, FeasibilityChecks.Explain(state.Nodes, ask)));
                continue;
            }

            placed.Add(state.Commit(best[faultDomain]!, ask.Tenant, request, slot));
        }

        return new PlacementResult(placed, unplaced ?? []);
    }

    private static bool LessFragmenting(NodeState a, NodeState b, in Ask ask)
    {
        var costA = a.WholeCoresNeeded(ask.Tenant, ask.Cpus);
        var costB = b.WholeCoresNeeded(ask.Tenant, ask.Cpus);
        return costA != costB ? costA < costB : a.FreeWholeCores < b.FreeWholeCores;
    }
}

internal static class PlacementValidation
{
    public static void Check(PlacementRequest request)
    {
        if (request.Cpus < 1 || request.MemoryMiB < 0)
        {
            throw new ArgumentException($"role {request.Role} asks for {request.Cpus} CPUs and {request.MemoryMiB} MiB; it needs at least 1 CPU");
        }
    }
}
