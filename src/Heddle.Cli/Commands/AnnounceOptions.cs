using System.CommandLine;
using System.Net;
using System.Net.NetworkInformation;
using Heddle.Controller.LoadBalancing;
using Heddle.LoadBalancer.Announcing;
using Heddle.LoadBalancer.Announcing.Arp;
using Heddle.LoadBalancer.Announcing.Bgp;
using Microsoft.Extensions.Logging;

namespace Heddle.Cli.Commands;

/// <summary>`heddle lb --announce none|arp|bgp` and what each mode takes.</summary>
internal sealed class AnnounceOptions
{
    private readonly Option<string> _mode = CreateMode();
    private readonly Option<string?> _interface = new("--interface") { Description = "arp: the interface on the clients' network to answer ARP on (default: the one holding --address)" };
    private readonly Option<string?> _peer = new("--bgp-peer") { Description = "bgp: the router's address to peer with" };
    private readonly Option<uint?> _asn = new("--bgp-asn") { Description = "bgp: this balancer's AS number" };
    private readonly Option<uint?> _peerAsn = new("--bgp-peer-asn") { Description = "bgp: the router's AS number" };

    private static Option<string> CreateMode()
    {
        var option = new Option<string>("--announce")
        {
            Description = "How the VIPs reach this balancer: none (the operator routes them here), arp (one owner per VIP answers ARP on a flat network), bgp (every balancer announces them to a router; ECMP)",
            DefaultValueFactory = _ => BalancerModes.None,
        };
        option.AcceptOnlyFromAmong(BalancerModes.None, BalancerModes.Arp, BalancerModes.Bgp);
        return option;
    }

    public void AddTo(Command command)
    {
        command.Options.Add(_mode);
        command.Options.Add(_interface);
        command.Options.Add(_peer);
        command.Options.Add(_asn);
        command.Options.Add(_peerAsn);
    }

    public string Mode(ParseResult parse) => parse.GetValue(_mode)!;

    /// <summary>The ARP interface: given, or the one holding the balancer's address.</summary>
    public string? Interface(ParseResult parse, IPAddress address)
    {
        if (Mode(parse) != BalancerModes.Arp)
        {
            return parse.GetValue(_interface) is null ? null : throw new UsageException("--interface is for --announce arp");
        }

        return parse.GetValue(_interface) ?? NetworkInterface.GetAllNetworkInterfaces()
            .FirstOrDefault(n => n.GetIPProperties().UnicastAddresses.Any(u => u.Address.Equals(address)))?.Name
            ?? throw new UsageException($"no interface of this host holds {address}; give --interface");
    }

    /// <summary>The announcer of the mode chosen (null for none); every option checked, each mistake a sentence.</summary>
    public IVipAnnouncer? Create(ParseResult parse, string name, IPAddress address, ILoggerFactory loggers)
    {
        var bgp = parse.GetValue(_peer) is not null || parse.GetValue(_asn) is not null || parse.GetValue(_peerAsn) is not null;
        switch (Mode(parse))
        {
            case BalancerModes.Arp when bgp:
            case BalancerModes.None when bgp:
                throw new UsageException("--bgp-peer, --bgp-asn and --bgp-peer-asn are for --announce bgp");
            case BalancerModes.Arp:
                var arp = new ArpAnnouncerOptions { Interface = Interface(parse, address)! };
                return new ArpAnnouncer(arp);
            case BalancerModes.Bgp:
                if (parse.GetValue(_peer) is not { } peerText || !IPAddress.TryParse(peerText, out var peer) || parse.GetValue(_asn) is not { } asn || parse.GetValue(_peerAsn) is not { } peerAsn)
                {
                    throw new UsageException("--announce bgp needs --bgp-peer ADDRESS (the router's), --bgp-asn N and --bgp-peer-asn N");
                }

                var options = new BgpOptions
                {
                    PeerAddress = peer, PeerAsn = peerAsn, LocalAsn = asn, LocalAddress = address,
                    ApiSocket = $"/run/heddle/lb-{name}/gobgpd.sock", // one gobgpd per balancer, even several on a host
                };
                try
                {
                    options.Validate();
                }
                catch (AnnouncerException e)
                {
                    throw new UsageException(e.Message);
                }

                return new BgpAnnouncer(options, loggers.CreateLogger<BgpAnnouncer>());
            default:
                return null;
        }
    }
}
