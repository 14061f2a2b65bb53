namespace Heddle.Contracts.Api;

/// <summary>What the load balancer should serve, as the controller publishes it: a listener per VIP and input port.</summary>
public sealed record LoadBalancerConfig
{
    public required long Version { get; init; }

    public required IReadOnlyList<VipListener> Listeners { get; init; }
}

/// <param name="Protocol">tcp or http.</param>
/// <param name="Backends">The Ready instances of the role that owns the endpoint.</param>
/// <param name="Probe">The balancer's own check of each backend (the role's probe); null: none beyond the controller's Ready.</param>
public sealed record VipListener(string Service, string Vip, int Port, string Protocol, IReadOnlyList<Backend> Backends, BackendProbe? Probe = null)
{
    public string Key => $"{Vip}:{Port}";
}

/// <summary>How the balancer checks a backend: an HTTP GET of <see cref="Path"/> (2xx/3xx) or a TCP connect, on the backend's port.</summary>
/// <param name="Kind">http or tcp.</param>
public sealed record BackendProbe(string Kind, string? Path, int IntervalMilliseconds, int TimeoutMilliseconds, int UnhealthyThreshold);

/// <param name="Id">Stable across changes (the instance id), so the consistent hash keeps flows where they were.</param>
public sealed record Backend(string Id, string Address, int Port);

/// <summary>A listener the balancer could not open, as it reports it to the controller.</summary>
/// <param name="Service">The deployment key the listener serves (as in <see cref="VipListener.Service"/>).</param>
/// <param name="Reason">What the operating system said (Address already in use, ...).</param>
/// <param name="Kind">What it means (<see cref="ListenerProblemKinds"/>): only <c>in-use</c> on every balancer moves a VIP.</param>
public sealed record ListenerProblem(string Service, string Vip, int Port, string Reason, string Kind = ListenerProblemKinds.InUse);

public static class ListenerProblemKinds
{
    /// <summary>Something else on the balancer's host listens there (EADDRINUSE): a squatter when every balancer says so.</summary>
    public const string InUse = "in-use";

    /// <summary>The VIP is not an address of the balancer's host (EADDRNOTAVAIL): that balancer's configuration, never the VIP's.</summary>
    public const string NotLocal = "not-local";

    /// <summary>Anything else the operating system refused.</summary>
    public const string Other = "other";
}

/// <summary>
/// What a load balancer tells the controller every <see cref="BalancerLease.HeartbeatMilliseconds"/>: who it is, how it
/// announces VIPs, whether its data plane is healthy, and what it could not open. It is a member of the cluster while its
/// heartbeats arrive; its reports go with it.
/// </summary>
/// <param name="Name">Unique in the cluster (default: the host name).</param>
/// <param name="Instance">Random per process: tells a restart from a second balancer under the same name.</param>
/// <param name="Address">Where it serves (its host's address).</param>
/// <param name="Mode">none (the VIPs reach its host by the operator's routes), arp or bgp.</param>
/// <param name="Interface">The interface it answers ARP on (arp mode).</param>
/// <param name="Healthy">Its data plane and announcer work: a balancer that is not is never given a VIP to own.</param>
/// <param name="Detail">How its announcer stands, for people.</param>
/// <param name="Announced">The VIPs it announces now.</param>
/// <param name="ConfigVersion">The configuration version it applied.</param>
/// <param name="Problems">Every listener of that configuration it could not open.</param>
public sealed record BalancerHeartbeat(string Name, string Instance, string Address, string Mode, string? Interface, bool Healthy, string Detail,
    IReadOnlyList<string> Announced, long ConfigVersion, IReadOnlyList<ListenerProblem> Problems);

/// <summary>The controller's answer to a heartbeat: the VIPs this balancer owns (arp mode) for <see cref="LeaseMilliseconds"/> from when it sent the heartbeat.</summary>
public sealed record BalancerLease(IReadOnlyList<string> Owned, int LeaseMilliseconds, int HeartbeatMilliseconds);

/// <summary>A load balancer as `heddle lb list` and `heddle info` show it.</summary>
/// <param name="State">Up, Unhealthy (its own report) or Gone (no heartbeat within the timeout; listed until it is forgotten).</param>
/// <param name="Owned">The VIPs it owns (arp mode).</param>
public sealed record BalancerStatus(string Name, string Address, string Mode, string? Interface, string State, string Detail, DateTimeOffset HeardAt,
    IReadOnlyList<string> Announced, IReadOnlyList<string> Owned, IReadOnlyList<ListenerProblem> Problems);
