using Heddle.Contracts.Api;
using Heddle.Model.Configuration;

namespace Heddle.Controller.Upgrades;

/// <summary>
/// One upgrade of a service, stored with it so that a restarted controller carries on where the last one stopped:
/// which revision it is for, which upgrade domains are done, which one is being walked and in what phase. Moving
/// forward it brings instances to <see cref="Revision"/>; rolling back it brings them back to <see cref="Previous"/>,
/// through the domains already walked, in reverse order. The record of a finished walk stays until the next one, so
/// `heddle upgrade status` can say how it ended.
/// </summary>
public sealed record UpgradeWalk
{
    /// <summary>The revision this upgrade is for.</summary>
    public required long Revision { get; init; }

    /// <summary>The revision the instances ran before; a rollback goes back to it.</summary>
    public required long Previous { get; init; }

    public required UpgradePolicy Policy { get; init; }

    /// <summary>The upgrade domains in the order they are walked.</summary>
    public required IReadOnlyList<int> Order { get; init; }

    /// <summary>Index into <see cref="Order"/> of the domain being walked.</summary>
    public int Position { get; init; }

    public WalkPhase Phase { get; init; } = WalkPhase.Draining;

    public bool RollingBack { get; init; }

    /// <summary>Why the walk rolled back or paused (a failed domain, or a user's command).</summary>
    public string? Reason { get; init; }

    /// <summary>Set by `heddle upgrade pause`: the walk holds where it is until `heddle upgrade resume`.</summary>
    public bool PausedByUser { get; init; }

    public required DateTimeOffset Started { get; init; }

    /// <summary>When the current phase began: the domain timeout counts from the start of <see cref="WalkPhase.Updating"/>.</summary>
    public required DateTimeOffset PhaseStarted { get; init; }

    public DateTimeOffset? Finished { get; init; }

    /// <summary>The revision the instances are being brought to now.</summary>
    public long Destination => RollingBack ? Previous : Revision;

    /// <summary>The revision they are coming from.</summary>
    public long Source => RollingBack ? Revision : Previous;

    public int? CurrentDomain => IsFinished || Position >= Order.Count ? null : Order[Position];

    public bool IsFinished => Phase is WalkPhase.Completed or WalkPhase.RolledBack;

    /// <summary>What `heddle history` says of the walk's revision while it runs and once it has ended.</summary>
    public string Outcome => Phase switch
    {
        WalkPhase.Completed => RevisionOutcomes.Completed,
        WalkPhase.RolledBack => $"{RevisionOutcomes.RolledBack}: {Reason}",
        WalkPhase.Paused or WalkPhase.WaitingForResume => RevisionOutcomes.Paused,
        _ when PausedByUser => RevisionOutcomes.Paused,
        _ when RollingBack => $"{RevisionOutcomes.RollingBack}: {Reason}",
        _ => RevisionOutcomes.InProgress,
    };
}

public enum WalkPhase
{
    /// <summary>The domain's instances that will restart are out of the load balancer and DNS; waiting until every data plane has been told.</summary>
    Draining,

    /// <summary>The domain's instances run (or are starting at) the destination revision; waiting for the health gate.</summary>
    Updating,

    /// <summary>Manual mode: the domain is healthy; waiting for `heddle upgrade resume`.</summary>
    WaitingForResume,

    /// <summary>A domain failed and the failure action is pause (or a rollback failed): waiting for a person.</summary>
    Paused,

    Completed,

    RolledBack,
}

/// <summary>How a revision ended, as `heddle history` shows it: the words of its upgrade's state, and Superseded.</summary>
public static class RevisionOutcomes
{
    public const string InProgress = UpgradeStates.InProgress;
    public const string Completed = UpgradeStates.Completed;
    public const string Paused = UpgradeStates.Paused;
    public const string RollingBack = UpgradeStates.RollingBack;
    public const string RolledBack = UpgradeStates.RolledBack;

    /// <summary>A newer revision was accepted before this one (which needed no walk) had all its instances Ready.</summary>
    public const string Superseded = "Superseded";
}
