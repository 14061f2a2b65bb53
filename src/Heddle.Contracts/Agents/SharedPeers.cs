namespace Heddle.Contracts.Agents;

/// <summary>
/// An instance's peers given as its role's peers, one array shared by every goal state that names the role, without
/// the instance itself (at <see cref="Self"/>). <see cref="PeerChanges.Between(long, long, IReadOnlyList{GoalEntry}, IReadOnlyList{GoalEntry}, bool)"/>
/// compares two such arrays once, not once per instance and node: every node that runs the role sees the same arrays
/// go by.
/// </summary>
public interface ISharedPeers : IReadOnlyList<Peer>
{
    /// <summary>Every peer of the role, the instance itself included, in index order as the controller makes them.</summary>
    Peer[] Role { get; }

    /// <summary>The instance's own index (the peer left out), whether or not the role's peers hold it.</summary>
    int Self { get; }
}
