namespace Heddle.Controller.HostRollouts;

/// <summary>
/// One host update (`heddle hostimage rollout NAME`), stored so that a restarted controller carries on where the last
/// one stopped: the image, the nodes in upgrade-domain order, the nodes being walked and those done, and each machine's
/// image before it (a rollback boots that one again). The record of a finished rollout stays until the next one, so
/// `heddle hostimage rollout status` can say how it ended.
/// </summary>
public sealed record HostRollout
{
    /// <summary>The host image the machines are brought to.</summary>
    public required string Image { get; init; }

    /// <summary>At most this many nodes are walked at once, all of one upgrade domain.</summary>
    public required int MaxParallel { get; init; }

    public HostRolloutPhase Phase { get; init; } = HostRolloutPhase.Running;

    /// <summary>Set while the rollout walks back to each machine's previous image (kept while it is paused).</summary>
    public bool RollingBack { get; init; }

    /// <summary>The nodes in the order they are walked (upgrade domain, then name).</summary>
    public required IReadOnlyList<HostRolloutTarget> Order { get; init; }

    /// <summary>The nodes being walked now, each at its stage.</summary>
    public IReadOnlyList<HostNodeStep> InProgress { get; init; } = [];

    /// <summary>The nodes walked to the destination (the new image, or the previous one when rolling back).</summary>
    public IReadOnlyList<string> Done { get; init; } = [];

    /// <summary>Each machine's host image before the rollout: what a rollback sets it back to.</summary>
    public required IReadOnlyDictionary<string, string> PreviousImages { get; init; }

    /// <summary>Why the rollout failed, paused or rolls back.</summary>
    public string? Reason { get; init; }

    public required DateTimeOffset Started { get; init; }

    public DateTimeOffset? Finished { get; init; }

    /// <summary>Incremented by every write: a write made from a stale read is refused by the store.</summary>
    public long Version { get; init; }

    public bool IsFinished => Phase is HostRolloutPhase.Done or HostRolloutPhase.Failed;

    /// <summary>The image a machine is brought to now.</summary>
    public string Destination(string machine) => RollingBack ? PreviousImages.GetValueOrDefault(machine, Image) : Image;

    /// <summary>The image a node is told to reboot into, or null when it is not at that stage.</summary>
    public string? RebootInto(string node) =>
        IsFinished ? null : InProgress.FirstOrDefault(n => n.Node == node && n.Stage == HostNodeStage.Rebooting) is { } step ? Destination(step.Machine) : null;
}

/// <summary>A node the rollout walks: its machine (whose image is set) and its upgrade domain.</summary>
public sealed record HostRolloutTarget(string Node, string Machine, string Domain);

/// <summary>Where a node being walked is.</summary>
public sealed record HostNodeStep
{
    public required string Node { get; init; }

    public required string Machine { get; init; }

    public required string Domain { get; init; }

    public required HostNodeStage Stage { get; init; }

    /// <summary>When the stage began: the timeouts count from it.</summary>
    public required DateTimeOffset StageStarted { get; init; }

    /// <summary>The instances the node ran when it was taken out (service/role/index): the health gate waits for them to be Ready again.</summary>
    public IReadOnlyList<string> Instances { get; init; } = [];

    /// <summary>Since when the health gate has held without a break (null: not holding).</summary>
    public DateTimeOffset? HealthySince { get; init; }

    /// <summary>Why the node's agent refused to reboot (it does not run from a host image), as it said.</summary>
    public string? Refusal { get; init; }
}

public enum HostNodeStage
{
    /// <summary>Its instances leave the load balancer and DNS (a surge instance elsewhere first where a role needs one); they stay placed there.</summary>
    Draining,

    /// <summary>Its agent is told to reboot (it stops its instances first); waiting for the node to come back from the new image.</summary>
    Rebooting,

    /// <summary>Back on the new image: waiting until it and its instances, started there again, are Ready for the stable time.</summary>
    Gating,
}

public enum HostRolloutPhase
{
    Running,

    /// <summary>By a user: the nodes being walked finish, no new one starts.</summary>
    Paused,

    RollingBack,

    Done,

    /// <summary>A node did not come back, or its agent refused to reboot; the reason says which.</summary>
    Failed,
}
