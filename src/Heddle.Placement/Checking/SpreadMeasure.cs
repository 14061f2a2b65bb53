using Heddle.Placement.Cluster;

namespace Heddle.Placement.Checking;

/// <summary>
/// How evenly roles are spread: per role, the largest minus the smallest instance count over the fault domains
/// that could hold it (domains with at least one Ready node carrying the role's labels).
/// </summary>
public static class SpreadMeasure
{
    public static int Skew(IReadOnlyCollection<NodeSpec> nodes, IEnumerable<Placement> placements, IReadOnlyDictionary<string, string>? constraints = null) =>
        Skew(EligibleFaultDomains(nodes, constraints), placements);

    /// <summary>The largest skew of any role in the state.</summary>
    public static int MaxSkew(ClusterState state, Func<RoleKey, IReadOnlyDictionary<string, string>?> constraintsOf)
    {
        var nodes = state.NodeSpecs.ToList();
        var eligibleByConstraints = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var max = 0;
        foreach (var role in state.Roles)
        {
            var constraints = constraintsOf(role);
            var key = constraints is null ? string.Empty : string.Join(';', constraints.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}={c.Value}"));
            if (!eligibleByConstraints.TryGetValue(key, out var eligible))
            {
                eligible = EligibleFaultDomains(nodes, constraints);
                eligibleByConstraints[key] = eligible;
            }

            max = Math.Max(max, Skew(eligible, state.PlacementsOf(role)));
        }

        return max;
    }

    private static HashSet<string> EligibleFaultDomains(IEnumerable<NodeSpec> nodes, IReadOnlyDictionary<string, string>? constraints) =>
        nodes.Where(n => n.Condition == NodeCondition.Ready && (constraints is null || constraints.All(c => n.Labels.TryGetValue(c.Key, out var v) && v == c.Value)))
             .Select(n => n.FaultDomain)
             .ToHashSet(StringComparer.Ordinal);

    private static int Skew(HashSet<string> eligible, IEnumerable<Placement> placements)
    {
        if (eligible.Count == 0)
        {
            return 0;
        }

        var counts = eligible.ToDictionary(fd => fd, _ => 0, StringComparer.Ordinal);
        foreach (var p in placements)
        {
            counts[p.FaultDomain] = counts.GetValueOrDefault(p.FaultDomain) + 1;
        }

        return counts.Values.Max() - counts.Values.Min();
    }
}
