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
public sealed record ListenerProblem(string Service, string Vip, int Port, string Reason);

/// <summary>
/// What one load balancer reports after applying a configuration: every listener it could not open (empty when all
/// are open). Each report replaces the same reporter's previous one.
/// </summary>
/// <param name="Reporter">Names the balancer process (host and pid), so reports of several balancers do not mix.</param>
/// <param name="Version">The configuration version applied.</param>
public sealed record LoadBalancerReport(string Reporter, long Version, IReadOnlyList<ListenerProblem> Problems);
