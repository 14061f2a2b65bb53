using System.Net;
using System.Net.Sockets;
using DnsClient;
using Heddle.Dns.Server;
using Heddle.Dns.Zone;

namespace Heddle.Dns.Tests;

/// <summary>Random and mutated packets: the server never crashes or hangs, and answers valid queries correctly afterwards.</summary>
public sealed class DnsFuzzTests(DnsServerFixture dns) : IClassFixture<DnsServerFixture>
{
    [Fact]
    public void Responder_RandomAndMutatedInput_NeverThrowsAndStaysInBounds()
    {
        var zone = CompiledZone.Build(DnsServerFixture.Records, new DnsOptions(), [IPAddress.Loopback]);
        var random = new Random(12345);
        var response = new byte[DnsResponder.ResponseBufferSize];
        var valid = DnsWireTypes.Query(1, "web.hello.heddle.internal", 1, 4096);
        for (var i = 0; i < 200_000; i++)
        {
            byte[] packet;
            if (i % 2 == 0)
            {
                packet = new byte[random.Next(0, 600)];
                random.NextBytes(packet);
            }
            else
            {
                packet = (byte[])valid.Clone();
                for (var m = random.Next(1, 6); m > 0; m--)
                {
                    packet[random.Next(packet.Length)] = (byte)random.Next(256);
                }

                if (random.Next(4) == 0)
                {
                    Array.Resize(ref packet, random.Next(packet.Length));
                }
            }

            var length = DnsResponder.Respond(packet, response, zone, overTcp: i % 3 == 0);
            Assert.InRange(length, 0, response.Length);
        }
    }

    [Fact]
    public async Task Server_AfterThousandsOfBadPackets_StillAnswersCorrectly()
    {
        var random = new Random(777);
        using (var udp = new UdpClient(AddressFamily.InterNetwork))
        {
            var valid = DnsWireTypes.Query(9, "hello.heddle.internal", 1, null);
            for (var i = 0; i < 5000; i++)
            {
                var packet = i % 2 == 0 ? new byte[random.Next(0, 300)] : (byte[])valid.Clone();
                if (i % 2 == 0)
                {
                    random.NextBytes(packet);
                }
                else
                {
                    packet[random.Next(packet.Length)] ^= (byte)(1 + random.Next(255));
                }

                udp.Send(packet, dns.Endpoint);
            }
        }

        for (var i = 0; i < 200; i++)
        {
            using var tcp = new TcpClient();
            tcp.Connect(dns.Endpoint);
            var garbage = new byte[random.Next(1, 64)];
            random.NextBytes(garbage);
            tcp.GetStream().Write(garbage);
        }

        var r = await dns.Client().QueryAsync("web.hello.heddle.internal", QueryType.A);
        Assert.Equal(3, r.Answers.Count);
        var overTcp = await dns.Client(tcpOnly: true).QueryAsync("_http._tcp.web.hello.heddle.internal", QueryType.SRV);
        Assert.Equal(3, overTcp.Answers.Count);
    }

    [Fact]
    public void Responder_QueryMarkedAsResponse_IsDropped()
    {
        var zone = CompiledZone.Build(DnsServerFixture.Records, new DnsOptions(), [IPAddress.Loopback]);
        var packet = DnsWireTypes.Query(1, "hello.heddle.internal", 1, null);
        packet[2] |= 0x80;

        Assert.Equal(0, DnsResponder.Respond(packet, new byte[DnsResponder.ResponseBufferSize], zone, overTcp: false));
    }

    [Fact]
    public void Responder_TwoQuestions_IsFormErr()
    {
        var zone = CompiledZone.Build(DnsServerFixture.Records, new DnsOptions(), [IPAddress.Loopback]);
        var packet = DnsWireTypes.Query(1, "hello.heddle.internal", 1, null);
        packet[5] = 2;
        var response = new byte[DnsResponder.ResponseBufferSize];

        var length = DnsResponder.Respond(packet, response, zone, overTcp: false);

        Assert.Equal(12, length);
        Assert.Equal(1, response[3] & 0x0F);
    }
}
