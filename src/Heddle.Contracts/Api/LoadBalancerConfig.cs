namespace Heddle.Contracts.Api;

/// <summary>What the load balancer should serve, as the controller publishes it: a listener per VIP and input port.</summary>
public sealed record LoadBalancerConfig
{
    public required long Version { get; init; }

    public required IReadOnlyList<VipListener> Listeners { get; init; }
}

/// <param name="Protocol">tcp or http.</param>
/// <param name="Backends">The Ready instances of the role that owns the endpoint.</param>
public sealed record VipListener(string Service, string Vip, int Port, string Protocol, IReadOnlyList<Backend> Backends)
{
    public string Key => $"{Vip}:{Port}";
}

/// <param name="Id">Stable across changes (the instance id), so the consistent hash keeps flows where they were.</param>
public sealed record Backend(string Id, string Address, int Port);
