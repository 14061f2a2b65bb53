using System.Net;
using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;
using Heddle.LoadBalancer.Announcing.Bgp.Apipb;

namespace Heddle.LoadBalancer.Announcing.Bgp;

/// <summary>
/// A VIP as gobgpd's API wants a path: the host prefix (/32, /128) as an <c>apipb.IPAddressPrefix</c> NLRI, ORIGIN IGP
/// and NEXT_HOP the balancer, each packed in an <c>Any</c> (whose type URL names the proto package, apipb, as gobgpd
/// expects). gobgpd turns an IPv6 prefix's NEXT_HOP into MP_REACH_NLRI itself.
/// </summary>
internal static class VipPaths
{
    private const uint OriginIgp = 0;

    public static readonly Family Ipv4Unicast = new() { Afi = Family.Types.Afi.Ip, Safi = Family.Types.Safi.Unicast };

    public static readonly Family Ipv6Unicast = new() { Afi = Family.Types.Afi.Ip6, Safi = Family.Types.Safi.Unicast };

    public static Family FamilyOf(IPAddress vip) => vip.AddressFamily == AddressFamily.InterNetworkV6 ? Ipv6Unicast : Ipv4Unicast;

    public static Apipb.Path Announce(IPAddress vip, IPAddress nextHop) => new()
    {
        Family = FamilyOf(vip),
        Nlri = Any.Pack(Prefix(vip)),
        Pattrs =
        {
            Any.Pack(new OriginAttribute { Origin = OriginIgp }),
            Any.Pack(new NextHopAttribute { NextHop = nextHop.ToString() }),
        },
    };

    private static IPAddressPrefix Prefix(IPAddress vip) => new()
    {
        Prefix = vip.ToString(),
        PrefixLen = vip.AddressFamily == AddressFamily.InterNetworkV6 ? 128u : 32u,
    };
}
