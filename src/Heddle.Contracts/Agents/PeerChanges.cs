using Google.Protobuf.Reflection;

namespace Heddle.Contracts.Agents;

/// <summary>
/// A goal state as its difference from the one before it, when only peers differ: the controller makes one with
/// <see cref="Between"/> and the agent turns it back into the whole goal state with <see cref="ApplyTo"/>, so that
/// <c>Between(sent, next).ApplyTo(sent)</c> equals <c>next</c>. Whole, a node's goal state carries every peer of every
/// role it runs (10 instances of roles of 100 are a thousand peers, 100 KB); one instance of a role turning Ready
/// changed it on every node of the role, and whole goal states to each were most of what the controller wrote.
/// </summary>
public sealed partial class PeerChanges
{
    private static readonly FieldDescriptor[] InstanceFieldsButPeers =
        [.. InstanceGoal.Descriptor.Fields.InFieldNumberOrder().Where(f => f.FieldNumber != InstanceGoal.PeersFieldNumber)];

    private static readonly FieldDescriptor[] GoalFieldsButVersionAndInstances =
        [.. GoalState.Descriptor.Fields.InFieldNumberOrder().Where(f => f.FieldNumber is not (GoalState.VersionFieldNumber or GoalState.InstancesFieldNumber))];

    /// <summary>Whether the changes change nothing (the goal state is the same but for its version).</summary>
    public bool IsEmpty => Roles.Count == 0;

    /// <summary>
    /// What turns <paramref name="sent"/> into <paramref name="next"/>, or null when more than peers differ (instances
    /// placed or gone, a spec, settings, a revision: anything but the peers lists), and a whole goal state must go.
    /// Peers are compared by value, and most by reference first: the controller shares them between goal states.
    /// </summary>
    public static PeerChanges? Between(GoalState sent, GoalState next)
    {
        if (sent.Instances.Count != next.Instances.Count || !SameFields(sent, next, GoalFieldsButVersionAndInstances))
        {
            return null;
        }

        for (var i = 0; i < next.Instances.Count; i++)
        {
            if (!SameFields(sent.Instances[i], next.Instances[i], InstanceFieldsButPeers))
            {
                return null;
            }
        }

        var changes = new PeerChanges { BaseVersion = sent.Version, Version = next.Version };
        foreach (var (service, role) in RolesOf(next))
        {
            if (SamePeerObjects(sent, next, service, role))
            {
                continue; // the controller shares peers between goal states: the same objects in the same order are unchanged
            }

            var (changed, removed) = InIndexOrder(sent, next, service, role) ? Walk(sent, next, service, role) : ById(sent, next, service, role);
            if (changed.Count > 0 || removed.Count > 0)
            {
                changed.Sort((a, b) => a.Index.CompareTo(b.Index));
                removed.Sort(StringComparer.Ordinal);
                changes.Roles.Add(new RolePeerChanges { Service = service, Role = role, Changed = { changed }, Removed = { removed } });
            }
        }

        return changes;
    }

    /// <summary>
    /// The role's changes found by walking each instance's peers in both goal states side by side, in index order (as
    /// the controller makes them): no dictionary of every peer per role and goal state, which was most of what the
    /// controller allocated while instances came up at 2,500 nodes.
    /// </summary>
    private static (List<Peer> Changed, List<string> Removed) Walk(GoalState sent, GoalState next, string service, string role)
    {
        var (changed, removed) = (new List<Peer>(), new List<string>());
        HashSet<string>? told = null; // with more than one instance of the role here, a peer is in each one's list
        var instances = 0;
        for (var i = 0; i < next.Instances.Count; i++)
        {
            if (next.Instances[i].Service != service || next.Instances[i].Role != role)
            {
                continue;
            }

            if (++instances == 2)
            {
                told = [.. changed.Select(p => p.InstanceId), .. removed];
            }

            var (before, after) = (sent.Instances[i].Peers, next.Instances[i].Peers);
            var (x, y) = (0, 0);
            while (x < before.Count || y < after.Count)
            {
                var order = x == before.Count ? 1 : y == after.Count ? -1 : Compare(before[x], after[y]);
                if (order < 0)
                {
                    Tell(removed, before[x].InstanceId, before[x].InstanceId);
                    x++;
                    continue;
                }

                if (order > 0 || !(ReferenceEquals(before[x], after[y]) || before[x].Equals(after[y])))
                {
                    Tell(changed, after[y], after[y].InstanceId);
                }

                if (order == 0)
                {
                    x++;
                }

                y++;
            }
        }

        return (changed, removed);

        void Tell<TItem>(List<TItem> list, TItem item, string id)
        {
            if (told is null || told.Add(id))
            {
                list.Add(item);
            }
        }
    }

    private static int Compare(Peer a, Peer b) => a.Index != b.Index ? a.Index.CompareTo(b.Index) : string.CompareOrdinal(a.InstanceId, b.InstanceId);

    /// <summary>Whether every instance of the role lists its peers in index order in both goal states (what <see cref="Walk"/> needs).</summary>
    private static bool InIndexOrder(GoalState sent, GoalState next, string service, string role)
    {
        foreach (var goal in (ReadOnlySpan<GoalState>)[sent, next])
        {
            foreach (var instance in goal.Instances)
            {
                if (instance.Service != service || instance.Role != role)
                {
                    continue;
                }

                for (var j = 1; j < instance.Peers.Count; j++)
                {
                    if (Compare(instance.Peers[j - 1], instance.Peers[j]) >= 0)
                    {
                        return false;
                    }
                }
            }
        }

        return true;
    }

    /// <summary>The role's changes found by id, for peers in any order.</summary>
    private static (List<Peer> Changed, List<string> Removed) ById(GoalState sent, GoalState next, string service, string role)
    {
        var before = PeersOfRole(sent, service, role);
        var after = PeersOfRole(next, service, role);
        var changed = new List<Peer>();
        foreach (var (id, peer) in after)
        {
            if (!before.TryGetValue(id, out var old) || !(ReferenceEquals(old, peer) || old.Equals(peer)))
            {
                changed.Add(peer);
            }
        }

        return (changed, [.. before.Keys.Where(id => !after.ContainsKey(id))]);
    }

    /// <summary>
    /// <paramref name="current"/> with these changes made, as a new goal state of <see cref="Version"/> (the instances
    /// of a changed role are new objects; <paramref name="current"/> and everything it holds are left as they were).
    /// Throws <see cref="InvalidOperationException"/> when the changes were made against another version.
    /// </summary>
    public GoalState ApplyTo(GoalState current)
    {
        if (current.Version != BaseVersion)
        {
            throw new InvalidOperationException($"peer changes from goal state {BaseVersion} to {Version} cannot apply to goal state {current.Version}");
        }

        var merged = new Dictionary<(string, string), Peer[]>();
        foreach (var change in Roles)
        {
            var peers = PeersOfRole(current, change.Service, change.Role);
            foreach (var id in change.Removed)
            {
                peers.Remove(id);
            }

            foreach (var peer in change.Changed)
            {
                peers[peer.InstanceId] = peer;
            }

            merged[(change.Service, change.Role)] = [.. peers.Values.OrderBy(p => p.Index)];
        }

        var next = new GoalState();
        next.MergeFrom(current); // shallow for messages: the instances are the same objects, replaced below where their peers changed
        next.Version = Version;
        for (var i = 0; i < next.Instances.Count; i++)
        {
            var instance = next.Instances[i];
            if (merged.TryGetValue((instance.Service, instance.Role), out var peers))
            {
                var changed = new InstanceGoal();
                changed.MergeFrom(instance); // shares the peers and settings, copies the lists: the original is not touched
                changed.Peers.Clear();
                foreach (var peer in peers)
                {
                    if (peer.InstanceId != instance.InstanceId)
                    {
                        changed.Peers.Add(peer);
                    }
                }

                next.Instances[i] = changed;
            }
        }

        return next;
    }

    /// <summary>The roles the goal state runs instances of, in the order they first appear.</summary>
    private static List<(string Service, string Role)> RolesOf(GoalState goal)
    {
        var roles = new List<(string, string)>();
        foreach (var instance in goal.Instances)
        {
            if (!roles.Contains((instance.Service, instance.Role)))
            {
                roles.Add((instance.Service, instance.Role));
            }
        }

        return roles;
    }

    /// <summary>
    /// Whether each instance of the role holds the very peer objects, in the same order, in both goal states (their
    /// instances are the same but for peers, so the same index is the same instance). Checked before the peers are
    /// compared by id and value, which made two dictionaries per role for every goal state sent.
    /// </summary>
    private static bool SamePeerObjects(GoalState sent, GoalState next, string service, string role)
    {
        for (var i = 0; i < next.Instances.Count; i++)
        {
            var (a, b) = (sent.Instances[i], next.Instances[i]);
            if (b.Service != service || b.Role != role)
            {
                continue;
            }

            if (a.Peers.Count != b.Peers.Count)
            {
                return false;
            }

            for (var j = 0; j < b.Peers.Count; j++)
            {
                if (!ReferenceEquals(a.Peers[j], b.Peers[j]))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>The peers the goal state names for a role, merged over its instances of the role, by instance id.</summary>
    private static Dictionary<string, Peer> PeersOfRole(GoalState goal, string service, string role)
    {
        var peers = new Dictionary<string, Peer>(StringComparer.Ordinal);
        foreach (var instance in goal.Instances)
        {
            if (instance.Service == service && instance.Role == role)
            {
                foreach (var peer in instance.Peers)
                {
                    peers[peer.InstanceId] = peer;
                }
            }
        }

        return peers;
    }

    private static bool SameFields(Google.Protobuf.IMessage a, Google.Protobuf.IMessage b, FieldDescriptor[] fields)
    {
        foreach (var field in fields)
        {
            if (!Equals(field.Accessor.GetValue(a), field.Accessor.GetValue(b)))
            {
                return false;
            }
        }

        return true;
    }
}
