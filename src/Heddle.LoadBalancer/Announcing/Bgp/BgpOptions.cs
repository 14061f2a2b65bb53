using System.Net;
using System.Net.Sockets;

namespace Heddle.LoadBalancer.Announcing.Bgp;

/// <summary>
/// How a balancer announces its VIPs over BGP (`heddle lb --announce bgp --bgp-peer ADDR --bgp-asn N --bgp-peer-asn N`):
/// one eBGP or iBGP session from a gobgpd of its own to one router. Defaults in the initialisers; <see cref="Validate"/>
/// at start-up turns a mistake into a sentence.
/// </summary>
public sealed record BgpOptions
{
    /// <summary>The router's address (--bgp-peer). IPv4: the session and the router id are IPv4.</summary>
    public required IPAddress PeerAddress { get; init; }

    /// <summary>The router's AS number (--bgp-peer-asn); the same as <see cref="LocalAsn"/> makes the session iBGP.</summary>
    public required uint PeerAsn { get; init; }

    /// <summary>This balancer's AS number (--bgp-asn). Balancers that announce the same VIPs usually share one.</summary>
    public required uint LocalAsn { get; init; }

    /// <summary>The balancer's own address: gobgpd's router id and the source of the session.</summary>
    public required IPAddress LocalAddress { get; init; }

    /// <summary>The NEXT_HOP of IPv4 VIPs; null: <see cref="LocalAddress"/>.</summary>
    public IPAddress? NextHop { get; init; }

    /// <summary>The NEXT_HOP of IPv6 VIPs; null: IPv6 VIPs cannot be announced (and the session carries IPv4 only).</summary>
    public IPAddress? NextHopV6 { get; init; }

    /// <summary>
    /// gobgpd's API socket. gobgpd's API has no authentication: a unix socket in a folder only root can enter (made
    /// 0700 at start) keeps it to this host's root, where a TCP port on 127.0.0.1 would be open to every local user.
    /// </summary>
    public string ApiSocket { get; init; } = "/run/heddle/bgp/gobgpd.sock";

    /// <summary>Debian's gobgpd (3.x).</summary>
    public string Gobgpd { get; init; } = "/usr/bin/gobgpd";

    /// <summary>
    /// Words put before gobgpd's command line, e.g. ["/usr/bin/nsenter", "--net=/run/netns/X", "--"] to run it in
    /// another network namespace (the tests' hosts). Empty in production. The program must exec gobgpd, not fork it:
    /// the daemon signals the pid it started.
    /// </summary>
    public IReadOnlyList<string> CommandPrefix { get; init; } = [];

    /// <summary>BGP keepalive interval. Default 1 s: gobgpd 3.x has no BFD, so the hold time is how fast a silent peer is noticed.</summary>
    public TimeSpan KeepaliveInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>BGP hold time: a session without a message for this long is down. Default 3 s, the least BGP allows.</summary>
    public TimeSpan HoldTime { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>How often gobgpd tries to connect to the router. Default 5 s, gobgpd's minimum (it waits 5–10 s).</summary>
    public TimeSpan ConnectRetry { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The first wait before gobgpd is restarted after it died; doubled on each death in a row, up to <see cref="MaxRestartBackoff"/>.</summary>
    public TimeSpan RestartBackoff { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRestartBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long gobgpd has to start and answer on its API.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>After SIGTERM gobgpd has this long to close its session (a Cease to the router) before it is killed.</summary>
    public TimeSpan StopGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The next hop announced for <paramref name="vip"/>; null when there is none for its family.</summary>
    public IPAddress? NextHopFor(IPAddress vip) =>
        vip.AddressFamily == AddressFamily.InterNetworkV6 ? NextHopV6 : NextHop ?? LocalAddress;

    /// <summary>Throws <see cref="AnnouncerException"/> with what to change.</summary>
    public void Validate()
    {
        if (PeerAddress.AddressFamily != AddressFamily.InterNetwork || !IsUnicast(PeerAddress))
        {
            throw new AnnouncerException($"bgp peer address {PeerAddress} is not a router's address: --bgp-peer takes the router's unicast IPv4 address on the balancer's network (e.g. 198.18.3.1)");
        }

        if (LocalAddress.AddressFamily != AddressFamily.InterNetwork || !IsUnicast(LocalAddress))
        {
            throw new AnnouncerException($"the balancer's address {LocalAddress} cannot be its BGP router id and session source: give the balancer's own unicast IPv4 address");
        }

        CheckAsn(LocalAsn, "--bgp-asn");
        CheckAsn(PeerAsn, "--bgp-peer-asn");
        if (NextHop is { } v4 && (v4.AddressFamily != AddressFamily.InterNetwork || !IsUnicast(v4)))
        {
            throw new AnnouncerException($"the IPv4 next hop {v4} is not a unicast IPv4 address");
        }

        if (NextHopV6 is { } v6 && (v6.AddressFamily != AddressFamily.InterNetworkV6 || !IsUnicast(v6)))
        {
            throw new AnnouncerException($"the IPv6 next hop {v6} is not a unicast IPv6 address");
        }

        if (HoldTime < TimeSpan.FromSeconds(3) || KeepaliveInterval < TimeSpan.FromSeconds(1) || KeepaliveInterval * 3 > HoldTime)
        {
            throw new AnnouncerException($"bgp timers keepalive {KeepaliveInterval.TotalSeconds:0} s, hold {HoldTime.TotalSeconds:0} s: the hold time must be at least 3 s and three keepalives (of at least 1 s)");
        }

        if (System.Text.Encoding.UTF8.GetByteCount(ApiSocket) > 100 || !System.IO.Path.IsPathFullyQualified(ApiSocket))
        {
            throw new AnnouncerException($"gobgpd's API socket {ApiSocket} must be an absolute path of at most 100 bytes (a unix socket's limit)");
        }
    }

    private static void CheckAsn(uint asn, string flag)
    {
        // 0 and 65535/4294967295 are reserved; 23456 is AS_TRANS, which stands in for 4-byte numbers on old speakers.
        if (asn is 0 or 23456 or 65535 or uint.MaxValue)
        {
            throw new AnnouncerException($"{flag} {asn} is not a usable AS number: take one of 1–4294967294 other than 23456 and 65535 (private: 64512–65534, 4200000000–4294967294)");
        }
    }

    private static bool IsUnicast(IPAddress address) =>
        !address.Equals(IPAddress.Any) && !address.Equals(IPAddress.Broadcast) && !address.Equals(IPAddress.IPv6Any)
        && !IPAddress.IsLoopback(address) && !address.IsIPv6Multicast
        && !(address.AddressFamily == AddressFamily.InterNetwork && address.GetAddressBytes()[0] >= 224);
}
