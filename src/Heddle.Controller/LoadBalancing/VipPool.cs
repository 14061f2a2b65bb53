using System.Net;
using System.Net.Sockets;

namespace Heddle.Controller.LoadBalancing;

/// <summary>The addresses services get their VIPs from: an IPv4 CIDR block, network and broadcast addresses left out.</summary>
public sealed class VipPool
{
    public VipPool(string cidr)
    {
        var slash = cidr.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(cidr[..slash], out var network) || network.AddressFamily != AddressFamily.InterNetwork
            || !int.TryParse(cidr[(slash + 1)..], out var bits) || bits is < 8 or > 30)
        {
            throw new ArgumentException($"the VIP pool '{cidr}' is not an IPv4 block from /8 to /30, such as 127.77.0.0/24");
        }

        var start = BitConverter.ToUInt32(network.GetAddressBytes().Reverse().ToArray()) & (uint.MaxValue << (32 - bits));
        var count = 1u << (32 - bits);
        Cidr = cidr;
        Candidates = [.. Enumerable.Range(1, (int)Math.Min(count - 2, 65_534)).Select(i => new IPAddress(BitConverter.GetBytes(start + (uint)i).Reverse().ToArray()).ToString())];
    }

    public string Cidr { get; }

    /// <summary>Every usable address, lowest first.</summary>
    public IReadOnlyList<string> Candidates { get; }
}
