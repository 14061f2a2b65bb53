using System.Net;
using Heddle.LoadBalancer.Announcing.Arp;

namespace Heddle.LoadBalancer.Tests.Announcing;

public sealed class ArpPacketTests
{
    private static readonly MacAddress Client = MacAddress.Parse("02:00:00:00:00:0c");
    private static readonly MacAddress Ours = MacAddress.Parse("02:ab:cd:ef:01:23");
    private static readonly uint ClientIp = ArpPacket.ToUInt32(IPAddress.Parse("198.18.7.12"));
    private static readonly uint Vip = ArpPacket.ToUInt32(IPAddress.Parse("198.18.7.200"));

    // "Who has 198.18.7.200? Tell 198.18.7.12", as captured from Linux (target hardware zero).
    private static byte[] Request() => Convert.FromHexString(
        "0001" + "0800" + "06" + "04" + "0001" + "02000000000c" + "c612070c" + "000000000000" + "c61207c8");

    [Fact]
    public void TryParse_Request_ReadsEveryField()
    {
        Assert.True(ArpPacket.TryParse(Request(), out var packet));

        Assert.Equal(new ArpPacket(ArpOperation.Request, Client, ClientIp, MacAddress.Zero, Vip), packet);
        Assert.False(packet.IsGratuitous);
        Assert.Equal("198.18.7.200", ArpPacket.ToAddress(packet.TargetIp).ToString());
    }

    [Fact]
    public void TryParse_PaddedToEthernetMinimum_IgnoresThePadding()
    {
        var padded = Request().Concat(new byte[18]).ToArray();

        Assert.True(ArpPacket.TryParse(padded, out var packet));
        Assert.Equal(Vip, packet.TargetIp);
    }

    [Fact]
    public void ReplyFrom_Request_AnswersTheRequesterWithOurMac()
    {
        ArpPacket.TryParse(Request(), out var request);
        var bytes = new byte[ArpPacket.Length];

        request.ReplyFrom(Ours).Write(bytes);

        Assert.Equal(
            "0001" + "0800" + "06" + "04" + "0002" + "02abcdef0123" + "c61207c8" + "02000000000c" + "c612070c",
            Convert.ToHexString(bytes).ToLowerInvariant());
    }

    [Fact]
    public void GratuitousRequest_AsksForItsOwnAddress_TargetHardwareZero()
    {
        var bytes = new byte[ArpPacket.Length];

        ArpPacket.GratuitousRequest(Ours, Vip).Write(bytes);

        Assert.Equal(
            "0001" + "0800" + "06" + "04" + "0001" + "02abcdef0123" + "c61207c8" + "000000000000" + "c61207c8",
            Convert.ToHexString(bytes).ToLowerInvariant());
        Assert.True(ArpPacket.TryParse(bytes, out var parsed) && parsed.IsGratuitous);
    }

    [Fact]
    public void GratuitousReply_TargetHardwareIsTheSender_AsLinuxRequiresOfAGratuitousReply()
    {
        var bytes = new byte[ArpPacket.Length];

        ArpPacket.GratuitousReply(Ours, Vip).Write(bytes);

        Assert.Equal(
            "0001" + "0800" + "06" + "04" + "0002" + "02abcdef0123" + "c61207c8" + "02abcdef0123" + "c61207c8",
            Convert.ToHexString(bytes).ToLowerInvariant());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(27)]
    public void TryParse_Short_Refused(int length)
    {
        Assert.False(ArpPacket.TryParse(Request().AsSpan(0, length), out var packet));
        Assert.Equal(default, packet);
    }

    [Theory]
    [InlineData(0, 0x01)] // hardware type 0x0101
    [InlineData(1, 0x06)] // hardware type 6 (IEEE 802), not Ethernet
    [InlineData(2, 0x86)] // protocol 0x86dd (IPv6)
    [InlineData(4, 0x08)] // hardware address length
    [InlineData(5, 0x10)] // protocol address length
    [InlineData(7, 0x03)] // operation 3 (RARP request)
    [InlineData(7, 0x00)] // operation 0
    public void TryParse_NotEthernetIPv4ArpRequestOrReply_Refused(int offset, byte value)
    {
        var bytes = Request();
        bytes[offset] = value;

        Assert.False(ArpPacket.TryParse(bytes, out _));
    }

    [Fact]
    public void TryParse_RandomGarbage_NeverThrows_AcceptsOnlyWellFormedHeaders()
    {
        var random = new Random(20240611);
        var buffer = new byte[64];
        for (var i = 0; i < 100_000; i++)
        {
            var length = random.Next(buffer.Length + 1);
            random.NextBytes(buffer);
            if (i % 2 == 0 && length >= 8)
            {
                Request().AsSpan(0, 6).CopyTo(buffer); // half with a valid header, to reach the operation check
            }

            if (ArpPacket.TryParse(buffer.AsSpan(0, length), out var packet))
            {
                Assert.True(length >= ArpPacket.Length);
                Assert.True(packet.Operation is ArpOperation.Request or ArpOperation.Reply);
            }
        }
    }

    [Fact]
    public void MacAddress_ParseAndFormat_RoundTrip_GroupBit()
    {
        Assert.Equal("02:ab:cd:ef:01:23", Ours.ToString());
        Assert.Equal(Ours, MacAddress.Parse(Ours.ToString()));
        Assert.False(Ours.IsGroup);
        Assert.True(MacAddress.Broadcast.IsGroup);
        Assert.True(MacAddress.Parse("01:00:5e:00:00:01").IsGroup);
    }
}
