using System.Runtime.CompilerServices;

namespace Heddle.Contracts.Agents;

public sealed partial class PeerChanges
{
    /// <summary>How many earlier arrays a role's array keeps its differences from (nodes were last sent different ones).</summary>
    private const int DiffsKept = 8;

    /// <summary>
    /// A role's array of peers, with its differences from the arrays before it that a goal state was last sent with,
    /// newest first. Kept as long as the array lives: the controller makes a new one when one of the role's peers changes.
    /// </summary>
    private static readonly ConditionalWeakTable<Peer[], RoleDiff[]> Diffs = new();

    /// <summary>What changed from <see cref="Sent"/> to the array it is kept for: changed peers in index order, removed ones by id (ordinal).</summary>
    private sealed record RoleDiff(Peer[] Sent, Peer[] Changed, Peer[] Removed);

    /// <summary>
    /// The role's changes when every kept instance of it has its peers as shared arrays (<see cref="ISharedPeers"/>), the
    /// same array in each goal state: the arrays' difference, computed once for every node and instance that sees the same
    /// two go by, without the peer that is the only instance of the role here. Null when the peers are not shared that way
    /// or not in index order: then they are compared instance by instance.
    /// </summary>
    private static (IEnumerable<Peer> Changed, IEnumerable<string> Removed)? SharedDifference(List<(GoalEntry Sent, GoalEntry Next)> kept, string service, string role)
    {
        Peer[]? sent = null;
        Peer[]? next = null;
        var selves = 0;
        var self = -1;
        foreach (var (a, b) in kept)
        {
            if (b.Service != service || b.Role != role)
            {
                continue;
            }

            if (a.Peers is not ISharedPeers before || b.Peers is not ISharedPeers after || before.Self != after.Self
                || (sent is not null && (!ReferenceEquals(sent, before.Role) || !ReferenceEquals(next, after.Role))))
            {
                return null;
            }

            (sent, next) = (before.Role, after.Role);
            if (selves++ == 0)
            {
                self = after.Self;
            }
        }

        if (sent is null || next is null)
        {
            return null;
        }

        if (ReferenceEquals(sent, next))
        {
            return ([], []);
        }

        if (DiffOf(sent, next) is not { } diff)
        {
            return null;
        }

        // Each instance's peers leave itself out; with two or more of the role here, each one's is in another's.
        return selves == 1
            ? (diff.Changed.Where(p => p.Index != self), diff.Removed.Where(p => p.Index != self).Select(p => p.InstanceId))
            : (diff.Changed, diff.Removed.Select(p => p.InstanceId));
    }

    private static RoleDiff? DiffOf(Peer[] sent, Peer[] next)
    {
        if (Diffs.TryGetValue(next, out var known))
        {
            foreach (var diff in known)
            {
                if (ReferenceEquals(diff.Sent, sent))
                {
                    return diff;
                }
            }
        }

        if (!InIndexOrder(sent) || !InIndexOrder(next))
        {
            return null;
        }

        var (changed, removed) = (new List<Peer>(), new List<Peer>());
        Difference(sent, next, removed.Add, changed.Add);
        removed.Sort((a, b) => string.CompareOrdinal(a.InstanceId, b.InstanceId));
        var made = new RoleDiff(sent, [.. changed], [.. removed]);
        // Racing callers may each add theirs: the same difference, kept twice at worst.
        Diffs.AddOrUpdate(next, known is null ? [made] : [made, .. known.Take(DiffsKept - 1)]);
        return made;
    }
}
