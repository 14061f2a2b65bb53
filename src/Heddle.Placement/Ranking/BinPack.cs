using Heddle.Placement.Cluster;
using Heddle.Placement.Feasibility;

namespace Heddle.Placement.Ranking;

/// <summary>
/// Packing inside a chosen fault domain, least fragmentation first: a node where the tenant already owns idle
/// sibling threads (filling them breaks no whole core), else the node with the fewest free whole cores that still
/// fits (best fit, so whole cores elsewhere stay whole for larger instances and other tenants).
/// </summary>
internal static class BinPack
{
    /// <summary>How many of the tenant's half-used nodes to look at before settling; they are all equally good fits.</summary>
    private const int IdleCandidatesToExamine = 16;

    /// <returns>The chosen node, or null when nothing in the fault domain fits.</returns>
    public static NodeState? FindNode(ClusterState state, int faultDomain, in Ask ask)
    {
        if (state.TenantIdleNodes(ask.Tenant, faultDomain) is { } idleNodes)
        {
            NodeState? best = null;
            var bestCost = int.MaxValue;
            var examined = 0;
            foreach (var index in idleNodes)
            {
                var node = state.Nodes[index];
                if (FeasibilityChecks.Fits(node, ask))
                {
                    var cost = node.WholeCoresNeeded(ask.Tenant, ask.Cpus);
                    if (cost < bestCost)
                    {
                        (best, bestCost) = (node, cost);
                        if (cost == 0)
                        {
                            break;
                        }
                    }
                }

                if (++examined == IdleCandidatesToExamine)
                {
                    break;
                }
            }

            if (best is not null)
            {
                return best;
            }
        }

        // Buckets below cpus ÷ (the most threads any core has) cannot hold the request, so the scan starts there.
        var threads = Math.Max(1, state.MaxThreadsPerCore);
        var from = (ask.Cpus + threads - 1) / threads;
        for (var wholeCores = from; wholeCores <= state.MaxCores; wholeCores++)
        {
            var bucket = state.Bucket(faultDomain, wholeCores);
            for (var i = 0; i < bucket.Count; i++)
            {
                var node = state.Nodes[bucket[i]];
                if (FeasibilityChecks.FitsReady(node, ask))
                {
                    return node;
                }
            }
        }

        return null;
    }
}
