using Heddle.LoadBalancer.Announcing.Bgp.Apipb;

namespace Heddle.LoadBalancer.Announcing.Bgp;

/// <summary>What a fresh gobgpd is told over its API: the same every time, so a restarted one is configured like the first.</summary>
internal static class GobgpConfig
{
    /// <summary>
    /// This speaker: its AS and router id. listen_port -1: it does not listen on 179 (it is the one that connects, so
    /// nothing else on the host needs to give up the port, and nothing from outside can open a session to it).
    /// </summary>
    public static Global Global(BgpOptions options) => new()
    {
        Asn = options.LocalAsn,
        RouterId = options.LocalAddress.ToString(),
        ListenPort = -1,
    };

    /// <summary>The router: its address and AS, the session from the balancer's address, short timers (no BFD in gobgpd 3.x).</summary>
    public static Peer Peer(BgpOptions options)
    {
        var peer = new Peer
        {
            Conf = new PeerConf { NeighborAddress = options.PeerAddress.ToString(), PeerAsn = options.PeerAsn },
            Timers = new Timers
            {
                Config = new TimersConfig
                {
                    KeepaliveInterval = (ulong)options.KeepaliveInterval.TotalSeconds,
                    HoldTime = (ulong)options.HoldTime.TotalSeconds,
                    ConnectRetry = (ulong)options.ConnectRetry.TotalSeconds,
                },
            },
            Transport = new Transport { LocalAddress = options.LocalAddress.ToString() },
            AfiSafis = { Family(VipPaths.Ipv4Unicast) },
        };
        if (options.NextHopV6 is not null)
        {
            peer.AfiSafis.Add(Family(VipPaths.Ipv6Unicast));
        }

        return peer;
    }

    private static AfiSafi Family(Family family) => new() { Config = new AfiSafiConfig { Family = family, Enabled = true } };
}
