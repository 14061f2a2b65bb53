using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Heddle.LoadBalancer.Announcing.Arp;

internal enum ArpOperation : ushort
{
    Request = 1,
    Reply = 2,
}

/// <summary>An Ethernet (MAC) address, its six bytes kept in a <c>ulong</c> so that frames parse without allocating.</summary>
internal readonly record struct MacAddress(ulong Value)
{
    public static readonly MacAddress Zero = new(0);
    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFF);

    /// <summary>Broadcast and multicast addresses have the low bit of the first octet set; nobody answers to one.</summary>
    public bool IsGroup => ((Value >> 40) & 1) != 0;

    public static MacAddress Read(ReadOnlySpan<byte> six) =>
        new(((ulong)BinaryPrimitives.ReadUInt16BigEndian(six) << 32) | BinaryPrimitives.ReadUInt32BigEndian(six[2..]));

    public void Write(Span<byte> six)
    {
        BinaryPrimitives.WriteUInt16BigEndian(six, (ushort)(Value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(six[2..], (uint)Value);
    }

    public static MacAddress Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 6)
        {
            throw new FormatException($"'{text}' is not a MAC address (six hexadecimal octets separated by colons)");
        }

        ulong value = 0;
        foreach (var part in parts)
        {
            value = (value << 8) | byte.Parse(part, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }

        return new MacAddress(value);
    }

    public override string ToString() => string.Create(17, Value, static (chars, value) =>
    {
        for (var i = 0; i < 6; i++)
        {
            var octet = (byte)(value >> (40 - (8 * i)));
            octet.TryFormat(chars[(3 * i)..], out _, "x2", CultureInfo.InvariantCulture);
            if (i < 5)
            {
                chars[(3 * i) + 2] = ':';
            }
        }
    });
}

/// <summary>
/// The 28-byte ARP payload for Ethernet and IPv4 (RFC 826), as an AF_PACKET datagram socket hands it over and takes it:
/// without the Ethernet header, perhaps followed by the padding that brings a frame to Ethernet's minimum. IPv4
/// addresses are <c>uint</c>s in host order (198.18.1.200 is 0xC61201C8). Parsing is for frames from anyone on the
/// link: anything that is not Ethernet/IPv4 ARP with a known operation is refused, never thrown on.
/// </summary>
internal readonly record struct ArpPacket(ArpOperation Operation, MacAddress SenderMac, uint SenderIp, MacAddress TargetMac, uint TargetIp)
{
    public const int Length = 28;

    private const ushort HardwareEthernet = 1;
    private const ushort ProtocolIPv4 = 0x0800;

    /// <summary>A request or announcement that asks nobody: sender and target address the same (RFC 5227).</summary>
    public bool IsGratuitous => SenderIp == TargetIp;

    public static bool TryParse(ReadOnlySpan<byte> payload, out ArpPacket packet)
    {
        packet = default;
        if (payload.Length < Length
            || BinaryPrimitives.ReadUInt16BigEndian(payload) != HardwareEthernet
            || BinaryPrimitives.ReadUInt16BigEndian(payload[2..]) != ProtocolIPv4
            || payload[4] != 6
            || payload[5] != 4)
        {
            return false;
        }

        var operation = (ArpOperation)BinaryPrimitives.ReadUInt16BigEndian(payload[6..]);
        if (operation is not (ArpOperation.Request or ArpOperation.Reply))
        {
            return false;
        }

        packet = new ArpPacket(
            operation,
            MacAddress.Read(payload[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(payload[14..]),
            MacAddress.Read(payload[18..]),
            BinaryPrimitives.ReadUInt32BigEndian(payload[24..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, Length);
        BinaryPrimitives.WriteUInt16BigEndian(destination, HardwareEthernet);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], ProtocolIPv4);
        destination[4] = 6;
        destination[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Operation);
        SenderMac.Write(destination[8..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination[14..], SenderIp);
        TargetMac.Write(destination[18..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], TargetIp);
    }

    /// <summary>The answer to this request from <paramref name="mac"/>: "the address asked for is at <paramref name="mac"/>".</summary>
    public ArpPacket ReplyFrom(MacAddress mac) => new(ArpOperation.Reply, mac, TargetIp, SenderMac, SenderIp);

    /// <summary>The request form of a gratuitous ARP: asks for its own address, target hardware unknown (zero, as RFC 5227's announcements).</summary>
    public static ArpPacket GratuitousRequest(MacAddress mac, uint ip) => new(ArpOperation.Request, mac, ip, MacAddress.Zero, ip);

    /// <summary>
    /// The reply form of a gratuitous ARP. Its target hardware address is the sender's own: Linux takes a reply as
    /// gratuitous (updating an entry it made less than a second ago) only then (arp_is_garp).
    /// </summary>
    public static ArpPacket GratuitousReply(MacAddress mac, uint ip) => new(ArpOperation.Reply, mac, ip, mac, ip);

    public static uint ToUInt32(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"{address} is not an IPv4 address", nameof(address));
        }

        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    public static IPAddress ToAddress(uint ip)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, ip);
        return new IPAddress(bytes);
    }
}
