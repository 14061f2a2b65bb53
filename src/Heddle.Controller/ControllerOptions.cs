namespace Heddle.Controller;

/// <summary>How a controller runs. Defaults suit `heddle up`; each is a command-line option of `heddle controller`.</summary>
public sealed record ControllerOptions
{
    /// <summary>Where the store (cluster.db), package blobs and secrets live.</summary>
    public required string StateDirectory { get; init; }

    /// <summary>
    /// The cluster store (`--store`): null or <c>sqlite:PATH</c> for the embedded store (default cluster.db in the state
    /// folder), or <c>etcd://host:port[,host:port...]</c> for etcd, which several controllers can share.
    /// </summary>
    public string? Store { get; init; }

    /// <summary>
    /// The files a controller reaches etcd over TLS with (`--etcd-ca`, `--etcd-cert`, `--etcd-key`): the CA the members'
    /// certificates chain to and this controller's etcd client certificate with its key. Null: etcd in clear, without
    /// authentication (the controller warns unless every member is on loopback).
    /// </summary>
    public Store.Kv.EtcdTlsFiles? EtcdTls { get; init; }

    /// <summary>The address the REST API and the agent gRPC endpoint listen on.</summary>
    public string ListenAddress { get; init; } = "127.0.0.1";

    /// <summary>
    /// More names the controller is reached by (`--tls-name`, IP addresses or DNS names): its certificate names each,
    /// beside its listen address (every address of the host when that is 0.0.0.0 or ::), 127.0.0.1, ::1, localhost and
    /// the host's name. For a controller reached through NAT, a load balancer or a DNS name.
    /// </summary>
    public IReadOnlyList<string> TlsNames { get; init; } = [];

    /// <summary>REST API port (HTTPS, HTTP/1.1); 0 picks a free one.</summary>
    public int ApiPort { get; init; }

    /// <summary>Agent port (gRPC and blob downloads, HTTP/2 over mutual TLS); 0 picks a free one.</summary>
    public int AgentPort { get; init; }

    /// <summary>A node not heard from for this long is Down and its instances are placed elsewhere. Default 10 s.</summary>
    public TimeSpan NodeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long the controller waits for a TCP connect to a node's address (its log port) when it enrols, or says hello
    /// at an address other than its last (`--node-reach-timeout`); a node that does not answer in time is refused.
    /// Keep it below the agent's 10 s enrolment deadline. Default 3 s.
    /// </summary>
    public TimeSpan NodeReachTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Load balancers' heartbeats and VIP leases (ARP ownership); tests shorten them.</summary>
    public LoadBalancing.BalancerTiming BalancerTiming { get; init; } = LoadBalancing.BalancerTiming.Default;

    /// <summary>The bounds of a host rollout's waits (drain, boot, health gate) and its stable time.</summary>
    public HostRollouts.HostRolloutTiming HostRollout { get; init; } = HostRollouts.HostRolloutTiming.Default;

    /// <summary>Every service is reconciled at least this often, whatever happened. Default 10 s.</summary>
    public TimeSpan ResyncInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How many services are reconciled at once: their passes plan one at a time, and commit together (one store
    /// transaction, or one round of etcd requests, for several), which is where a serial loop spent its time. A pass
    /// waits for two store round trips (its instances' generation, then its commit) and plans in about a millisecond,
    /// so the workers bound how many services a second are healed: with 8, a node loss touching 260 services at 2,500
    /// nodes was placed elsewhere at about 90 services a second. Default 32.
    /// </summary>
    public int ReconcileWorkers { get; init; } = 32;

    /// <summary>An instance restarted this many times on one node is moved to another. Default 5.</summary>
    public int RestartsBeforeMove { get; init; } = 5;

    /// <summary>Where service VIPs come from (IPv4 CIDR). Default 127.77.0.0/24 on loopback; null gives services no VIP.</summary>
    public string? VipPool { get; init; } = "127.77.0.0/24";

    /// <summary>
    /// The uids services' instances run as (`--uid-range`): each service gets one of its own for the whole cluster, so
    /// no two services share a uid on any host. Default 200000-265535; give clusters sharing hosts ranges of their own.
    /// </summary>
    public Heddle.Contracts.UidRange UidRange { get; init; } = Heddle.Contracts.UidRange.Default;

    /// <summary>How many revisions of each service are kept for `heddle history` and rollback (`--history`). Default 10.</summary>
    public int HistoryLimit { get; init; } = 10;

    /// <summary>How long a node certificate is valid (`--node-cert-lifetime`); agents renew at two thirds of it. Default 90 days.</summary>
    public TimeSpan NodeCertificateLifetime { get; init; } = TimeSpan.FromDays(90);

    /// <summary>
    /// How long the join string handed to one network boot of a registered machine is valid (default 1 h): long enough for
    /// the host image to download and its agent to enrol, short so one read off the provisioning network soon proves nothing.
    /// </summary>
    public TimeSpan BootJoinLifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// The least time between two join strings issued to one machine's boots (default 5 s): a card (or someone using its
    /// MAC) asking in a loop gets <c>TryLater</c>, not a new token record and event each time.
    /// </summary>
    public TimeSpan BootJoinInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Serve the REST API over plain HTTP (`--insecure-http`), for a controller behind a proxy that terminates TLS.
    /// Tokens then cross the wire in clear between the proxy and the controller. The agent port is always TLS.
    /// </summary>
    public bool InsecureHttp { get; init; }

    /// <summary>
    /// The quota of every tenant an admin has not set one for (`--default-quota`): by default 64 cores, 256 instances,
    /// 16 VIPs and 262144 MiB of disk; <see cref="Contracts.Api.QuotaLimits.Unlimited"/> for none. The admin's own
    /// tenant has no quota unless one is set.
    /// </summary>
    public Contracts.Api.QuotaLimits DefaultQuota { get; init; } = Contracts.Api.QuotaLimits.NewTenantDefault;

    /// <summary>Fixes the order equally good nodes are tried in, so placements repeat.</summary>
    public int PlacementSeed { get; init; } = 1;
}
