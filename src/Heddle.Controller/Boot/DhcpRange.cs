using System.Buffers.Binary;
using System.Net;

namespace Heddle.Controller.Boot;

/// <summary>The addresses dnsmasq leases on the provisioning network. Pure.</summary>
public sealed record DhcpRange(IPAddress Start, IPAddress End, IPAddress Mask)
{
    /// <summary>
    /// The half of <paramref name="address"/>'s subnet that does not hold it (the upper half, less the broadcast address,
    /// for a server in the lower half), so the boot host's own address is never leased. Null for a subnet too small
    /// (longer than /29).
    /// </summary>
    public static DhcpRange? For(IPAddress address, int prefixLength)
    {
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || prefixLength is < 8 or > 29)
        {
            return null;
        }

        var self = BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes());
        var mask = uint.MaxValue << (32 - prefixLength);
        var network = self & mask;
        var size = ~mask + 1;
        var half = network + size / 2;
        var (start, end) = self < half ? (half, network + size - 2) : (network + 1, half - 1);
        return new DhcpRange(Ip(start), Ip(end), Ip(mask));
    }

    private static IPAddress Ip(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return new IPAddress(bytes);
    }
}
