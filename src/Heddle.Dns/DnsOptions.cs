namespace Heddle.Dns;

/// <summary>How the DNS server runs. Defaults in the initialisers; `heddle controller`, `up` and `dns` expose them.</summary>
public sealed record DnsOptions
{
    /// <summary>The zone served. Default heddle.internal.</summary>
    public string Zone { get; init; } = "heddle.internal";

    /// <summary>TTL of every answer and of negative caching (SOA minimum), 0–3600 s. Default 5 s.</summary>
    public int Ttl { get; init; } = 5;

    public string ListenAddress { get; init; } = "127.0.0.1";

    /// <summary>UDP and TCP port; 0 lets the OS choose a free one (the UDP one, which TCP then shares).</summary>
    public int Port { get; init; }

    /// <summary>
    /// Threads receiving UDP queries, all on one socket. Default: one per two CPUs, at least 1 and at most 4. They
    /// share the socket's queue, and the host's CPUs with the clients and the rest of the node: on 2 CPUs, two workers
    /// answered 0.92x Knot's queries/s with four dnsperf clients where one answered 1.07x (bench dns --rounds 5,
    /// 2026-12-05); through `heddle up`, with two, each worker took half the queries and 1.09-1.15x Knot's CPU per query.
    /// </summary>
    public int UdpWorkers { get; init; } = Math.Clamp(Environment.ProcessorCount / 2, 1, 4);

    /// <summary>
    /// At most this many TCP connections at once. When all are held, a new one takes the place of the one idle the
    /// longest (RFC 7766 §6.2.3); it is refused only while every one is answering a query. Default 256.
    /// </summary>
    public int MaxTcpConnections { get; init; } = 256;

    /// <summary>TCP connections one client address may hold at once (RFC 7766 §6.2.2), so one client cannot take every slot. Default 16.</summary>
    public int MaxTcpConnectionsPerClient { get; init; } = 16;

    /// <summary>A TCP connection idle this long is closed. Default 10 s.</summary>
    public TimeSpan TcpIdleTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public void Validate()
    {
        if (Ttl is < 0 or > 3600)
        {
            throw new ArgumentException($"the DNS TTL {Ttl} is outside 0..3600 seconds");
        }

        Wire.DnsNames.Encode(Zone);
    }
}
