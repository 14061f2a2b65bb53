namespace Heddle.Contracts.Api;

/// <summary>
/// What the cluster's DNS zone says, as the controller publishes it: every service with its VIPs (or none yet)
/// and the Ready instances of each role. The DNS server compiles it; `heddle dns` receives it over the API.
/// </summary>
public sealed record DnsRecordSet
{
    public required long Serial { get; init; }

    public required IReadOnlyList<DnsService> Services { get; init; }
}

/// <param name="Vips">The service's load-balancer addresses; when empty, the service name answers its Ready instances.</param>
public sealed record DnsService(string Name, IReadOnlyList<string> Vips, IReadOnlyList<DnsRole> Roles);

public sealed record DnsRole(string Name, IReadOnlyList<DnsInstance> Instances);

/// <summary>A Ready instance: its index, its node's address, and its endpoints' ports.</summary>
public sealed record DnsInstance(int Index, string Address, IReadOnlyList<DnsEndpoint> Endpoints);

/// <param name="Transport">tcp or udp (http endpoints are tcp).</param>
public sealed record DnsEndpoint(string Name, string Transport, int Port);
