namespace Heddle.Controller.HostRollouts;

/// <summary>The bounds of a host rollout's waits; a node that passes one fails the rollout with the reason.</summary>
public sealed record HostRolloutTiming
{
    public static readonly HostRolloutTiming Default = new();

    /// <summary>How long a node's instances may take to leave the load balancer and DNS (a surge instance elsewhere first, where a role needs one).</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a node may take from the reboot directive to reporting the new image, Ready.</summary>
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How long a node back on its new image may take to pass the health gate.</summary>
    public TimeSpan GateTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long the node and the instances it ran must stay Ready before the next node.</summary>
    public TimeSpan HealthStable { get; init; } = TimeSpan.FromSeconds(10);
}
