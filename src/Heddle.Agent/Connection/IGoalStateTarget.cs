using Heddle.Contracts.Agents;

namespace Heddle.Agent.Connection;

/// <summary>What a session with a controller drives: the instances this node runs (the supervisor).</summary>
public interface IGoalStateTarget
{
    /// <summary>Every instance as it stands, for the hello that opens each session.</summary>
    IReadOnlyList<InstanceReport> Reports();

    /// <summary>Drives the node toward a goal state the controller sent.</summary>
    void Apply(GoalState goal);
}
