using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;
using Heddle.Contracts.Api;
using Heddle.Dns.Server;
using Heddle.Testing;

namespace Heddle.Dns.Tests;

/// <summary>Every row of the name table, checked with a real client over real sockets.</summary>
public sealed class DnsAnswerTests(DnsServerFixture dns) : IClassFixture<DnsServerFixture>
{
    private static string[] Addresses(IDnsQueryResponse r) => [.. r.Answers.OfType<AddressRecord>().Select(a => a.Address.ToString()).Order()];

    [Fact]
    public async Task Service_WithoutVip_AnswersEveryReadyInstanceAuthoritatively()
    {
        var r = await dns.Client().QueryAsync("hello.heddle.internal", QueryType.A);

        Assert.Equal(DnsHeaderResponseCode.NoError, r.Header.ResponseCode);
        Assert.True(r.Header.HasAuthorityAnswer);
        Assert.Equal(["127.0.1.1", "127.0.1.2", "127.0.1.3"], Addresses(r));
        Assert.All(r.Answers, a => Assert.Equal(5, a.InitialTimeToLive));
    }

    [Fact]
    public async Task Service_WithVip_AnswersTheVip()
    {
        var r = await dns.Client().QueryAsync("shop.heddle.internal", QueryType.A);

        Assert.Equal(["127.77.0.5"], Addresses(r));
    }

    [Fact]
    public async Task Role_AnswersEveryInstance_RotatedPerAnswer()
    {
        var client = dns.Client();
        var firsts = new HashSet<string>();
        for (var i = 0; i < 6; i++)
        {
            var r = await client.QueryAsync("web.hello.heddle.internal", QueryType.A);
            Assert.Equal(["127.0.1.1", "127.0.1.2", "127.0.1.3"], Addresses(r));
            firsts.Add(r.Answers.OfType<ARecord>().First().Address.ToString());
        }

        Assert.Equal(3, firsts.Count);
    }

    [Fact]
    public async Task Instance_AnswersThatOneInstance()
    {
        var r = await dns.Client().QueryAsync("2.web.hello.heddle.internal", QueryType.A);

        Assert.Equal(["127.0.1.3"], Addresses(r));
    }

    [Fact]
    public async Task Aaaa_ForAnIPv6Instance()
    {
        var r = await dns.Client().QueryAsync("api.shop.heddle.internal", QueryType.AAAA);

        Assert.Equal(["::1"], Addresses(r));
    }

    [Fact]
    public async Task Srv_OneRecordPerReadyInstance_WithTargetsAndTheirAddresses()
    {
        var r = await dns.Client().QueryAsync("_http._tcp.web.hello.heddle.internal", QueryType.SRV);

        var srv = r.Answers.SrvRecords().OrderBy(s => s.Target.Value).ToList();
        Assert.Equal(["0.web.hello.heddle.internal.", "1.web.hello.heddle.internal.", "2.web.hello.heddle.internal."], srv.Select(s => s.Target.Value));
        Assert.Equal([20000, 20000, 20001], srv.Select(s => (int)s.Port));
        Assert.Equal(3, r.Additionals.OfType<ARecord>().Count());
    }

    [Fact]
    public async Task Apex_HasSoaAndNs()
    {
        var soa = await dns.Client().QueryAsync("heddle.internal", QueryType.SOA);
        var ns = await dns.Client().QueryAsync("heddle.internal", QueryType.NS);
        var nsAddress = await dns.Client().QueryAsync("ns.heddle.internal", QueryType.A);

        var record = Assert.Single(soa.Answers.SoaRecords());
        Assert.Equal("ns.heddle.internal.", record.MName.Value);
        Assert.Equal(7u, record.Serial);
        Assert.Equal("ns.heddle.internal.", Assert.Single(ns.Answers.NsRecords()).NSDName.Value);
        Assert.Equal([dns.Endpoint.Address.ToString()], Addresses(nsAddress));
    }

    [Fact]
    public async Task DnsVersion_IsATxtRecord()
    {
        var r = await dns.Client().QueryAsync("dns-version.heddle.internal", QueryType.TXT);

        Assert.Equal("heddle-dns 1", Assert.Single(Assert.Single(r.Answers.TxtRecords()).Text));
    }

    [Fact]
    public async Task MissingName_IsNxDomainWithTheSoaInAuthority()
    {
        var r = await dns.Client().QueryAsync("nope.hello.heddle.internal", QueryType.A);

        Assert.Equal(DnsHeaderResponseCode.NotExistentDomain, r.Header.ResponseCode);
        Assert.Empty(r.Answers);
        Assert.Equal(5u, Assert.Single(r.Authorities.SoaRecords()).Minimum);
    }

    [Fact]
    public async Task ExistingNameWithoutTheType_IsNoDataWithTheSoaInAuthority()
    {
        var r = await dns.Client().QueryAsync("web.hello.heddle.internal", QueryType.AAAA);

        Assert.Equal(DnsHeaderResponseCode.NoError, r.Header.ResponseCode);
        Assert.Empty(r.Answers);
        Assert.Single(r.Authorities.SoaRecords());
    }

    [Fact]
    public async Task EmptyNonTerminal_IsNoDataNotNxDomain()
    {
        var r = await dns.Client().QueryAsync("_tcp.web.hello.heddle.internal", QueryType.SRV);

        Assert.Equal(DnsHeaderResponseCode.NoError, r.Header.ResponseCode);
        Assert.Single(r.Authorities.SoaRecords());
    }

    [Fact]
    public async Task NameOutsideTheZone_IsRefused()
    {
        var r = await dns.Client().QueryAsync("example.com", QueryType.A);

        Assert.Equal(DnsHeaderResponseCode.Refused, r.Header.ResponseCode);
        Assert.False(r.Header.HasAuthorityAnswer);
        Assert.Empty(r.Answers);
    }

    [Fact]
    public async Task Names_MatchCaseInsensitively_AndTheQuestionKeepsItsCase()
    {
        var r = await dns.Client().QueryAsync("WEB.Hello.HEDDLE.internal", QueryType.A);

        Assert.Equal(3, r.Answers.Count);
        Assert.Equal("WEB.Hello.HEDDLE.internal.", r.Questions[0].QueryName.Value);
    }

    [Fact]
    public void TooLargeForUdp_IsTruncated_AndTcpGetsTheWholeAnswer()
    {
        var udp = RawQuery("web.big.heddle.internal", DnsWireTypes.A, edns: null, tcp: false);
        var tcp = RawQuery("web.big.heddle.internal", DnsWireTypes.A, edns: null, tcp: true);

        Assert.True((BinaryPrimitives.ReadUInt16BigEndian(udp.AsSpan(2)) & 0x0200) != 0, "TC set over UDP");
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(udp.AsSpan(6)));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(tcp.AsSpan(2)) & 0x0200);
        Assert.Equal(60, BinaryPrimitives.ReadUInt16BigEndian(tcp.AsSpan(6)));
    }

    [Fact]
    public async Task TruncatedAnswer_ClientFallsBackToTcp()
    {
        var r = await dns.Client(ednsBuffer: 512).QueryAsync("web.big.heddle.internal", QueryType.A);

        Assert.Equal(60, r.Answers.Count);
    }

    [Fact]
    public void Edns0_LargerBufferFitsTheAnswerOverUdp_AndTheResponseCarriesOpt()
    {
        var udp = RawQuery("web.big.heddle.internal", DnsWireTypes.A, edns: 4096, tcp: false);

        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(udp.AsSpan(2)) & 0x0200);
        Assert.Equal(60, BinaryPrimitives.ReadUInt16BigEndian(udp.AsSpan(6)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(udp.AsSpan(10)));
        Assert.Equal(DnsWireTypes.Opt, BinaryPrimitives.ReadUInt16BigEndian(udp.AsSpan(udp.Length - 10)));
    }

    [Fact]
    public async Task Update_IsAnsweredAtOnce_AndAServerWithoutUpdatesKeepsItsLastRecords()
    {
        await using var server = DnsServer.Start(new DnsOptions { Port = 0, Ttl = 0 });
        server.Update(DnsServerFixture.Records);
        var client = new LookupClient(new LookupClientOptions(new NameServer(server.Endpoint)) { UseCache = false });
        Assert.Equal(3, (await client.QueryAsync("web.hello.heddle.internal", QueryType.A)).Answers.Count);

        server.Update(DnsServerFixture.Records with
        {
            Serial = 8,
            Services = [new DnsService("hello", [], [new DnsRole("web", [new DnsInstance(0, "127.0.1.1", [])])])],
        });

        var after = await client.QueryAsync("web.hello.heddle.internal", QueryType.A);
        Assert.Single(after.Answers);
        Assert.Equal(0, after.Answers[0].InitialTimeToLive);
        Assert.Equal(DnsHeaderResponseCode.NotExistentDomain, (await client.QueryAsync("web.big.heddle.internal", QueryType.A)).Header.ResponseCode);
    }

    [Fact]
    public void Dig_AnswersLikeTheTableSays()
    {
        var port = dns.Endpoint.Port.ToString();
        var a = ProcessRunner.Run("dig", ["@127.0.0.1", "-p", port, "hello.heddle.internal", "+short"], TimeSpan.FromSeconds(10));
        var srv = ProcessRunner.Run("dig", ["@127.0.0.1", "-p", port, "_http._tcp.web.hello.heddle.internal", "SRV", "+short"], TimeSpan.FromSeconds(10));
        var nx = ProcessRunner.Run("dig", ["@127.0.0.1", "-p", port, "missing.heddle.internal"], TimeSpan.FromSeconds(10));
        var big = ProcessRunner.Run("dig", ["@127.0.0.1", "-p", port, "web.big.heddle.internal", "+noedns", "+short"], TimeSpan.FromSeconds(10));

        Assert.Equal(["127.0.1.1", "127.0.1.2", "127.0.1.3"], a.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
        Assert.Contains("0 1 20001 2.web.hello.heddle.internal.", srv.Stdout);
        Assert.Contains("status: NXDOMAIN", nx.Stdout);
        Assert.Contains("flags: qr aa", nx.Stdout);
        Assert.Equal(60, big.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // dig retries over TCP after TC
    }

    private byte[] RawQuery(string name, ushort type, int? edns, bool tcp)
    {
        var query = DnsWireTypes.Query(0x1234, name, type, edns);
        if (tcp)
        {
            using var client = new TcpClient();
            client.Connect(dns.Endpoint);
            var stream = client.GetStream();
            stream.Write([(byte)(query.Length >> 8), (byte)query.Length]);
            stream.Write(query);
            var prefix = new byte[2];
            stream.ReadExactly(prefix);
            var response = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
            stream.ReadExactly(response);
            return response;
        }

        using var udp = new UdpClient();
        udp.Client.ReceiveTimeout = 3000;
        udp.Send(query, dns.Endpoint);
        IPEndPoint? from = null;
        return udp.Receive(ref from);
    }
}

/// <summary>Builds raw queries for the tests that look at bytes (header bits, section counts).</summary>
internal static class DnsWireTypes
{
    public const ushort A = 1;
    public const ushort Opt = 41;

    public static byte[] Query(ushort id, string name, ushort type, int? edns)
    {
        var bytes = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, (byte)(edns is null ? 0 : 1) };
        foreach (var label in name.Split('.'))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }

        bytes.AddRange([0, (byte)(type >> 8), (byte)type, 0, 1]);
        if (edns is { } size)
        {
            bytes.AddRange([0, 0, 41, (byte)(size >> 8), (byte)size, 0, 0, 0, 0, 0, 0]);
        }

        return [.. bytes];
    }
}
