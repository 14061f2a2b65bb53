using Google.Protobuf.Reflection;

namespace Heddle.Contracts.Agents;

/// <summary>
/// A goal state as its difference from the one before it: the controller makes one with <see cref="Between"/> and the
/// agent turns it back into the whole goal state with <see cref="ApplyTo"/>, so that <c>Between(sent, next).ApplyTo(sent)</c>
/// equals <c>next</c>. Whole, a node's goal state carries every peer of every role it runs (10 instances of roles of
/// 100 are a thousand peers, 100 KB); one instance of a role turning Ready changed it on every node of the role, and
/// one instance placed on a node changed that node's. Whole goal states to each were most of what the controller
/// wrote: the peers that changed go per role, and the instances placed, changed or gone go one by one.
/// </summary>
public sealed partial class PeerChanges
{
    private static readonly FieldDescriptor[] InstanceFieldsButPeers =
        [.. InstanceGoal.Descriptor.Fields.InFieldNumberOrder().Where(f => f.FieldNumber != InstanceGoal.PeersFieldNumber)];

    private static readonly FieldDescriptor[] GoalFieldsButVersionAndInstances =
        [.. GoalState.Descriptor.Fields.InFieldNumberOrder().Where(f => f.FieldNumber is not (GoalState.VersionFieldNumber or GoalState.InstancesFieldNumber))];

    /// <summary>Whether the changes change nothing (the goal state is the same but for its version).</summary>
    public bool IsEmpty => Roles.Count == 0 && Instances.Count == 0 && RemovedInstances.Count == 0 && Respecified.Count == 0;

    /// <summary>
    /// What turns <paramref name="sent"/> into <paramref name="next"/>, or null when a whole goal state must go: more
    /// than the instances differs (a host image to reboot into), or instances were placed, changed in anything but
    /// their peers, or removed and <paramref name="instances"/> is false (the agent takes peer changes alone) or
    /// <paramref name="next"/> does not list its instances in id order. An instance changed but for its peers goes
    /// without them: a scale or a deploy relabels every instance of the service with the new revision. Peers are compared by value, and most by
    /// reference first: the controller shares them between goal states.
    /// </summary>
    public static PeerChanges? Between(GoalState sent, GoalState next, bool instances = false) =>
        SameFields(sent, next, GoalFieldsButVersionAndInstances)
            ? Between(sent.Version, next.Version, [.. sent.Instances.Select(GoalEntry.Of)], [.. next.Instances.Select(GoalEntry.Of)], instances)
            : null;

    /// <summary>
    /// The same, for goal states given as their instances (<see cref="GoalEntry"/>: a goal and its peers, which the
    /// controller keeps apart from it) whose other fields are the same: the controller compares what it keeps of the
    /// last goal state sent without making either whole.
    /// </summary>
    public static PeerChanges? Between(long sentVersion, long nextVersion, IReadOnlyList<GoalEntry> sent, IReadOnlyList<GoalEntry> next, bool instances)
    {
        var changes = new PeerChanges { BaseVersion = sentVersion, Version = nextVersion };
        var kept = Kept(sent, next, changes);
        if ((changes.Instances.Count > 0 || changes.RemovedInstances.Count > 0 || changes.Respecified.Count > 0) && (!instances || !InIdOrder(next)))
        {
            return null;
        }

        foreach (var (service, role) in RolesOf(kept))
        {
            if (SharedDifference(kept, service, role) is var (sharedChanged, sharedRemoved))
            {
                var change = new RolePeerChanges { Service = service, Role = role, Changed = { sharedChanged }, Removed = { sharedRemoved } };
                if (change.Changed.Count > 0 || change.Removed.Count > 0)
                {
                    changes.Roles.Add(change);
                }

                continue;
            }

            if (SamePeerObjects(kept, service, role))
            {
                continue; // the controller shares peers between goal states: the same objects in the same order are unchanged
            }

            var (changed, removed) = InIndexOrder(kept, service, role) ? Walk(kept, service, role) : ById(kept, service, role);
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
    /// The instances in both goal states, as pairs (sent, next), whose peers are compared; the others go into
    /// <paramref name="changes"/>: those only in <paramref name="next"/> whole, those only in <paramref name="sent"/>
    /// by id. A pair changed in anything but its peers goes into it too, without peers. Paired by position when both
    /// list the same ids in the same order (the usual case).
    /// </summary>
    private static List<(GoalEntry Sent, GoalEntry Next)> Kept(IReadOnlyList<GoalEntry> sent, IReadOnlyList<GoalEntry> next, PeerChanges changes)
    {
        var kept = new List<(GoalEntry, GoalEntry)>(next.Count);
        var aligned = sent.Count == next.Count;
        for (var i = 0; aligned && i < next.Count; i++)
        {
            aligned = sent[i].Spec.InstanceId == next[i].Spec.InstanceId;
        }

        Dictionary<string, GoalEntry>? byId = aligned ? null : sent.ToDictionary(e => e.Spec.InstanceId, StringComparer.Ordinal);
        for (var i = 0; i < next.Count; i++)
        {
            var after = next[i];
            GoalEntry before;
            if (byId is null)
            {
                before = sent[i];
            }
            else if (!byId.Remove(after.Spec.InstanceId, out before))
            {
                changes.Instances.Add(after.Whole());
                continue;
            }

            kept.Add((before, after));
            if (!ReferenceEquals(before.Spec, after.Spec) && !SameFields(before.Spec, after.Spec, InstanceFieldsButPeers))
            {
                changes.Respecified.Add(after.WithoutPeers());
            }
        }

        if (byId is not null)
        {
            changes.RemovedInstances.AddRange(byId.Keys.Order(StringComparer.Ordinal));
        }

        return kept;
    }

    /// <summary>Whether the goal state lists its instances in instance id order (ordinal), as <see cref="ApplyTo"/> leaves them.</summary>
    private static bool InIdOrder(IReadOnlyList<GoalEntry> goal)
    {
        for (var i = 1; i < goal.Count; i++)
        {
            if (string.CompareOrdinal(goal[i - 1].Spec.InstanceId, goal[i].Spec.InstanceId) >= 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The role's changes found by walking each kept instance's peers in both goal states side by side, in index order
    /// (as the controller makes them): no dictionary of every peer per role and goal state, which was most of what the
    /// controller allocated while instances came up at 2,500 nodes.
    /// </summary>
    private static (List<Peer> Changed, List<string> Removed) Walk(List<(GoalEntry Sent, GoalEntry Next)> kept, string service, string role)
    {
        var (changed, removed) = (new List<Peer>(), new List<string>());
        HashSet<string>? told = null; // with more than one instance of the role here, a peer is in each one's list
        var instances = 0;
        foreach (var (sent, next) in kept)
        {
            if (next.Service != service || next.Role != role)
            {
                continue;
            }

            if (++instances == 2)
            {
                told = [.. changed.Select(p => p.InstanceId), .. removed];
            }

            Difference(sent.Peers, next.Peers, p => Tell(removed, p.InstanceId, p.InstanceId), p => Tell(changed, p, p.InstanceId));
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

    /// <summary>Walks two peer lists in index order side by side: each peer only in <paramref name="before"/> is removed, each new or different one in <paramref name="after"/> changed.</summary>
    private static void Difference(IReadOnlyList<Peer> before, IReadOnlyList<Peer> after, Action<Peer> removed, Action<Peer> changed)
    {
        var (x, y) = (0, 0);
        while (x < before.Count || y < after.Count)
        {
            var order = x == before.Count ? 1 : y == after.Count ? -1 : Compare(before[x], after[y]);
            if (order < 0)
            {
                removed(before[x++]);
                continue;
            }

            if (order > 0 || !(ReferenceEquals(before[x], after[y]) || before[x].Equals(after[y])))
            {
                changed(after[y]);
            }

            if (order == 0)
            {
                x++;
            }

            y++;
        }
    }

    /// <summary>Whether the peers are in strict index order (what <see cref="Difference"/> needs).</summary>
    private static bool InIndexOrder(IReadOnlyList<Peer> peers)
    {
        for (var j = 1; j < peers.Count; j++)
        {
            if (Compare(peers[j - 1], peers[j]) >= 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether every kept instance of the role lists its peers in index order in both goal states (what <see cref="Walk"/> needs).</summary>
    private static bool InIndexOrder(List<(GoalEntry Sent, GoalEntry Next)> kept, string service, string role)
    {
        foreach (var (sent, next) in kept)
        {
            if (next.Service != service || next.Role != role)
            {
                continue;
            }

            if (!InIndexOrder(sent.Peers) || !InIndexOrder(next.Peers))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The role's changes found by id, for peers in any order.</summary>
    private static (List<Peer> Changed, List<string> Removed) ById(List<(GoalEntry Sent, GoalEntry Next)> kept, string service, string role)
    {
        var before = PeersOfRole(kept.Select(k => k.Sent), service, role);
        var after = PeersOfRole(kept.Select(k => k.Next), service, role);
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
    /// Instances placed, changed or removed leave the goal state's instances in instance id order. Throws
    /// <see cref="InvalidOperationException"/> when the changes were made against another version.
    /// </summary>
    public GoalState ApplyTo(GoalState current)
    {
        if (current.Version != BaseVersion)
        {
            throw new InvalidOperationException($"peer changes from goal state {BaseVersion} to {Version} cannot apply to goal state {current.Version}");
        }

        var reshaped = Instances.Count > 0 || RemovedInstances.Count > 0 || Respecified.Count > 0;
        HashSet<string>? replaced = reshaped ? [.. Instances.Select(i => i.InstanceId), .. RemovedInstances] : null;
        var kept = replaced is null ? current.Instances.ToList() : current.Instances.Where(i => !replaced.Contains(i.InstanceId)).ToList();
        var respecified = Respecified.Count == 0 ? null : Respecified.ToDictionary(i => i.InstanceId, StringComparer.Ordinal);
        var merged = new Dictionary<(string, string), Peer[]>();
        foreach (var change in Roles)
        {
            var peers = PeersOfRole(kept.Select(GoalEntry.Of), change.Service, change.Role);
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
        next.MergeFrom(current); // shallow for messages: the instances are the same objects, replaced below where they changed
        next.Version = Version;
        next.Instances.Clear();
        foreach (var instance in kept)
        {
            var spec = respecified?.GetValueOrDefault(instance.InstanceId);
            var peers = merged.GetValueOrDefault((instance.Service, instance.Role));
            if (spec is null && peers is null)
            {
                next.Instances.Add(instance);
                continue;
            }

            var changed = new InstanceGoal();
            changed.MergeFrom(spec ?? instance); // shares the peers and settings, copies the lists: the original is not touched
            changed.Peers.Clear();
            foreach (var peer in (IEnumerable<Peer>?)peers ?? instance.Peers)
            {
                if (peer.InstanceId != instance.InstanceId)
                {
                    changed.Peers.Add(peer);
                }
            }

            next.Instances.Add(changed);
        }

        if (reshaped)
        {
            var all = next.Instances.Concat(Instances).OrderBy(i => i.InstanceId, StringComparer.Ordinal).ToList();
            next.Instances.Clear();
            next.Instances.AddRange(all);
        }

        return next;
    }

    /// <summary>The roles of the kept instances, in the order they first appear.</summary>
    private static List<(string Service, string Role)> RolesOf(List<(GoalEntry Sent, GoalEntry Next)> kept)
    {
        var roles = new List<(string, string)>();
        foreach (var (_, instance) in kept)
        {
            if (!roles.Contains((instance.Service, instance.Role)))
            {
                roles.Add((instance.Service, instance.Role));
            }
        }

        return roles;
    }

    /// <summary>
    /// Whether each kept instance of the role holds the very peer objects, in the same order, in both goal states.
    /// Checked before the peers are compared by id and value, which made two dictionaries per role for every goal state sent.
    /// </summary>
    private static bool SamePeerObjects(List<(GoalEntry Sent, GoalEntry Next)> kept, string service, string role)
    {
        foreach (var (a, b) in kept)
        {
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

    /// <summary>The peers the instances name for a role, merged over those of the role, by instance id.</summary>
    private static Dictionary<string, Peer> PeersOfRole(IEnumerable<GoalEntry> instances, string service, string role)
    {
        var peers = new Dictionary<string, Peer>(StringComparer.Ordinal);
        foreach (var instance in instances)
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
