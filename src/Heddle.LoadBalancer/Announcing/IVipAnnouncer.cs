using System.Net;

namespace Heddle.LoadBalancer.Announcing;

/// <summary>
/// How a balancer tells the network that VIPs reach it: ARP on a flat network (this balancer answers for the VIPs it
/// owns), or BGP to the routers (every healthy balancer announces every VIP it serves; the routers spread flows by
/// ECMP). The balancer's host accepts the VIPs' traffic through local routes (<see cref="LocalVipRoutes"/>); an
/// announcer only decides who sends it here.
/// </summary>
public interface IVipAnnouncer : IAsyncDisposable
{
    /// <summary>arp or bgp.</summary>
    string Mode { get; }

    /// <summary>Brings the announcer up. Throws <see cref="AnnouncerException"/> with a sentence an operator can act on when it cannot.</summary>
    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Makes what is announced exactly <paramref name="vips"/>: each new one is announced at once (a gratuitous ARP on
    /// taking it; a BGP advertisement), each left out is withdrawn. Idempotent.
    /// </summary>
    Task AnnounceAsync(IReadOnlySet<IPAddress> vips, CancellationToken cancellationToken);

    /// <summary>What it announces now and how it stands, for `heddle info` and `heddle lb list`.</summary>
    AnnouncerStatus Status { get; }
}

/// <param name="Mode">arp or bgp.</param>
/// <param name="Healthy">False while it cannot announce (gobgpd down, no session established, the interface gone).</param>
/// <param name="Detail">One line for people: "bgp: peer 198.18.3.1 AS 65000 Established" or "arp on eth0 (02:…)".</param>
/// <param name="Announced">The VIPs announced now.</param>
public sealed record AnnouncerStatus(string Mode, bool Healthy, string Detail, IReadOnlyList<string> Announced);

/// <summary>An announcer that cannot start or cannot announce; the message says what to fix.</summary>
public sealed class AnnouncerException(string message, Exception? inner = null) : Exception(message, inner);
