namespace Heddle.Contracts.Agents;

/// <summary>
/// An instance of a goal state as <see cref="PeerChanges.Between(long, long, IReadOnlyList{GoalEntry}, IReadOnlyList{GoalEntry}, bool)"/>
/// compares it: its goal, and its peers. For a goal state received whole they are the goal's own; the controller keeps
/// them apart (a role's peers once, shared by every instance of the role, the goal without peers kept while its
/// instance record is the same), so that keeping the last goal state sent to each node costs no copy of every peer.
/// </summary>
/// <param name="Spec">The instance's goal; its own peers are read only when they are <paramref name="Peers"/>.</param>
/// <param name="Peers">The instance's peers, in the order the goal state lists them.</param>
public readonly record struct GoalEntry(InstanceGoal Spec, IReadOnlyList<Peer> Peers)
{
    public static GoalEntry Of(InstanceGoal instance) => new(instance, instance.Peers);

    public string Service => Spec.Service;

    public string Role => Spec.Role;

    /// <summary>The instance's goal with its peers in it: the goal itself when those are its own.</summary>
    public InstanceGoal Whole()
    {
        if (ReferenceEquals(Peers, Spec.Peers))
        {
            return Spec;
        }

        var whole = new InstanceGoal();
        whole.MergeFrom(Spec); // the lists copied, their items shared
        whole.Peers.Clear();
        whole.Peers.AddRange(Peers);
        return whole;
    }

    /// <summary>The instance's goal without peers: the goal itself when it holds none.</summary>
    public InstanceGoal WithoutPeers()
    {
        if (Spec.Peers.Count == 0)
        {
            return Spec;
        }

        var spec = new InstanceGoal();
        spec.MergeFrom(Spec);
        spec.Peers.Clear();
        return spec;
    }
}
