using Heddle.Placement.Cluster;

namespace Heddle.Placement.Feasibility;

/// <summary>A hard rule: a node either can take the instance or it cannot, and then the user is told which rule said no.</summary>
internal interface IFeasibilityCheck
{
    /// <summary>The phrase that follows a node count in an explanation: "12 not enough free memory".</summary>
    string Reason { get; }

    bool Fits(NodeState node, in Ask ask);
}

/// <summary>Down and draining nodes receive nothing.</summary>
internal sealed class ConditionCheck : IFeasibilityCheck
{
    public string Reason => "down or draining";

    public bool Fits(NodeState node, in Ask ask) => node.Condition == NodeCondition.Ready;
}

/// <summary>The node's agent can run the role's driver (a container role never lands where only processes can run).</summary>
internal sealed class DriverCheck : IFeasibilityCheck
{
    public string Reason => "driver unavailable";

    public bool Fits(NodeState node, in Ask ask) => node.Spec.Drivers.Contains(ask.Driver);
}

/// <summary>Every constraint of the role names a label the node carries with that value.</summary>
internal sealed class LabelCheck : IFeasibilityCheck
{
    public string Reason => "without the required labels";

    public bool Fits(NodeState node, in Ask ask) => Matches(node.Spec.Labels, ask.Constraints);

    public static bool Matches(IReadOnlyDictionary<string, string> labels, IReadOnlyDictionary<string, string> constraints)
    {
        if (constraints.Count == 0)
        {
            return true;
        }

        foreach (var (key, value) in constraints)
        {
            if (!labels.TryGetValue(key, out var actual) || actual != value)
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>Memory is never over-committed.</summary>
internal sealed class MemoryCheck : IFeasibilityCheck
{
    public string Reason => "not enough free memory";

    public bool Fits(NodeState node, in Ask ask) => node.FreeMemoryMiB >= ask.MemoryMiB;
}

/// <summary>Enough logical CPUs are free at all.</summary>
internal sealed class CpuCheck : IFeasibilityCheck
{
    public string Reason => "not enough free cores";

    public bool Fits(NodeState node, in Ask ask) => node.FreeCpus >= ask.Cpus;
}

/// <summary>
/// Enough CPUs are free without sharing a physical core with another tenant: idle siblings of other tenants' cores
/// do not count. Checked after <see cref="CpuCheck"/>, so the count says how much the isolation promise costs.
/// </summary>
internal sealed class IsolationCheck : IFeasibilityCheck
{
    public string Reason => "free cores only beside another tenant's threads";

    public bool Fits(NodeState node, in Ask ask) => node.UsableCpusFor(ask.Tenant) >= ask.Cpus;
}

internal static class FeasibilityChecks
{
    /// <summary>In the order a node is tested and explained: the first rule a node fails is the one it is counted under.</summary>
    public static IReadOnlyList<IFeasibilityCheck> All { get; } =
        [new ConditionCheck(), new DriverCheck(), new LabelCheck(), new MemoryCheck(), new CpuCheck(), new IsolationCheck()];

    /// <summary>The checks for a node already known to be Ready (the indexes hold only Ready nodes).</summary>
    public static bool FitsReady(NodeState node, in Ask ask) =>
        node.FreeMemoryMiB >= ask.MemoryMiB && node.UsableCpusFor(ask.Tenant) >= ask.Cpus && node.Spec.Drivers.Contains(ask.Driver)
        && LabelCheck.Matches(node.Spec.Labels, ask.Constraints);

    public static bool Fits(NodeState node, in Ask ask) => node.Condition == NodeCondition.Ready && FitsReady(node, ask);

    /// <summary>Why no node fits: every node counted under the first rule it fails. Costs one pass over the cluster.</summary>
    public static Explanation Explain(IReadOnlyList<NodeState> nodes, in Ask ask)
    {
        var counts = new int[All.Count];
        foreach (var node in nodes)
        {
            for (var i = 0; i < All.Count; i++)
            {
                if (!All[i].Fits(node, ask))
                {
                    counts[i]++;
                    break;
                }
            }
        }

        var driver = ask.Driver;
        return new Explanation(nodes.Count, [.. All.Select((check, i) => new KeyValuePair<string, int>(check is DriverCheck ? $"{driver} driver unavailable" : check.Reason, counts[i]))]);
    }
}
