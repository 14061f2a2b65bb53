using Heddle.Contracts.Agents;

namespace Heddle.Controller.Agents;

/// <summary>
/// What one agent's stream is sent for each goal state computed for its node: the first whole; later ones as their
/// <see cref="PeerChanges"/> against the last sent when the agent takes them (its Hello said so): the peers that
/// changed and, to an agent that takes instance changes too, the instances placed, changed or gone; whole otherwise;
/// nothing when nothing but the version changed. An agent that predates peer changes is sent every goal state that
/// differs whole, as before. One per stream, used by its one writer.
/// </summary>
public sealed class GoalSender(bool takesPeerChanges, bool takesInstanceChanges = false)
{
    private GoalView? _sent;

    /// <summary>The message that brings the agent to <paramref name="next"/>, or null when it is there already.</summary>
    public ControllerMessage? Next(GoalState next) => Next(GoalView.Of(next));

    /// <summary>The message that brings the agent to <paramref name="next"/>, or null when it is there already.</summary>
    public ControllerMessage? Next(GoalView next)
    {
        if (_sent is null)
        {
            _sent = next;
            return new ControllerMessage { Goal = next.ToGoalState() };
        }

        var changes = _sent.RebootInto == next.RebootInto
            ? PeerChanges.Between(_sent.Version, next.Version, _sent.Instances, next.Instances, takesPeerChanges && takesInstanceChanges)
            : null;
        if (changes is { IsEmpty: true })
        {
            return null;
        }

        _sent = next;
        return changes is not null && takesPeerChanges ? new ControllerMessage { Peers = changes } : new ControllerMessage { Goal = next.ToGoalState() };
    }
}
