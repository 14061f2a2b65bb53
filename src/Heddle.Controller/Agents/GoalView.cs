using Heddle.Contracts.Agents;

namespace Heddle.Controller.Agents;

/// <summary>
/// A node's goal state as the controller keeps it: each instance's goal without peers (the same object while its
/// instance record, revision and image are) beside its role's peers (one array per role, shared by every goal state
/// that names the role). What a stream keeps as the last goal state sent, and compares the next with
/// (<see cref="GoalSender"/>); made whole (<see cref="ToGoalState"/>) only to be sent whole. Kept whole, each node's
/// last goal state held a copied list of every peer of every instance on it, made again each time a peer changed:
/// most of what the controller's collections found alive while 2,500 nodes deployed.
/// </summary>
/// <param name="Instances">In instance id order (ordinal), as whole goal states list them.</param>
public sealed record GoalView(long Version, string RebootInto, IReadOnlyList<GoalEntry> Instances)
{
    /// <summary>The goal state as the agent is sent it whole.</summary>
    public GoalState ToGoalState()
    {
        var goal = new GoalState { Version = Version, RebootInto = RebootInto };
        foreach (var instance in Instances)
        {
            goal.Instances.Add(instance.Whole());
        }

        return goal;
    }

    /// <summary>A goal state given whole, as a view of itself.</summary>
    public static GoalView Of(GoalState goal) => new(goal.Version, goal.RebootInto, [.. goal.Instances.Select(GoalEntry.Of)]);
}

/// <summary>An instance's peers: its role's, shared, without the instance itself (found by its index).</summary>
internal sealed class RolePeers : ISharedPeers
{
    private readonly Peer[] _role;
    private readonly int _self; // the instance's own position in the role's peers, or -1

    public RolePeers(Peer[] role, int index)
    {
        _role = role;
        Self = index;
        _self = Array.FindIndex(role, p => p.Index == index);
    }

    public Peer[] Role => _role;

    public int Self { get; }

    public int Count => _self < 0 ? _role.Length : _role.Length - 1;

    public Peer this[int i] => _self < 0 || i < _self ? _role[i] : _role[i + 1];

    public IEnumerator<Peer> GetEnumerator()
    {
        for (var i = 0; i < Count; i++)
        {
            yield return this[i];
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
