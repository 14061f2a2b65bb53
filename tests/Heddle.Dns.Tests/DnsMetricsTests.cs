using System.Net;
using DnsClient;
using Heddle.Contracts.Metrics;
using Heddle.Dns.Server;
using Heddle.Testing;

namespace Heddle.Dns.Tests;

public sealed class DnsMetricsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Metrics_AfterQueries_CountThemByTransportTypeAndRcode()
    {
        using var meters = new MeterScope();
        await using var server = DnsServer.Start(new DnsOptions { Port = 0 }, meters);
        server.Update(DnsServerFixture.Records);
        await using var listener = await MetricsListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), meters);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        var before = await MetricsScrape.GetAsync(http, listener.Url);
        Assert.Equal(0, before.Sum("heddle_dns_queries_total"));
        Assert.Equal(7, before.Sum("heddle_dns_zone_serial"));

        var udp = Client(server, tcpOnly: false);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(DnsHeaderResponseCode.NoError, (await udp.QueryAsync("hello.heddle.internal", QueryType.A)).Header.ResponseCode);
        }

        Assert.Equal(DnsHeaderResponseCode.NotExistentDomain, (await udp.QueryAsync("nope.heddle.internal", QueryType.A)).Header.ResponseCode);
        Assert.Equal(DnsHeaderResponseCode.NoError, (await udp.QueryAsync("_http._tcp.web.hello.heddle.internal", QueryType.SRV)).Header.ResponseCode);
        Assert.Equal(DnsHeaderResponseCode.Refused, (await udp.QueryAsync("example.com", QueryType.AAAA)).Header.ResponseCode);
        Assert.Equal(DnsHeaderResponseCode.NoError, (await Client(server, tcpOnly: true).QueryAsync("web.hello.heddle.internal", QueryType.A)).Header.ResponseCode);

        // A DNS client may resend a query it thinks was lost (a loaded machine): at least as many as were asked, never another kind.
        var after = await MetricsScrape.GetAsync(http, listener.Url);
        Assert.InRange(after.Sum("heddle_dns_queries_total", ("transport", "udp"), ("type", "A"), ("rcode", "NOERROR")), 3, 6);
        Assert.InRange(after.Sum("heddle_dns_queries_total", ("transport", "udp"), ("type", "A"), ("rcode", "NXDOMAIN")), 1, 2);
        Assert.InRange(after.Sum("heddle_dns_queries_total", ("transport", "udp"), ("type", "SRV"), ("rcode", "NOERROR")), 1, 2);
        Assert.InRange(after.Sum("heddle_dns_queries_total", ("transport", "udp"), ("type", "AAAA"), ("rcode", "REFUSED")), 1, 2);
        Assert.InRange(after.Sum("heddle_dns_queries_total", ("transport", "tcp"), ("type", "A"), ("rcode", "NOERROR")), 1, 2);
        Assert.Equal(0, after.Sum("heddle_dns_queries_total", ("rcode", "FORMERR")));
    }

    [Fact]
    public async Task Metrics_AMalformedQuery_IsCountedAsFormerr()
    {
        using var meters = new MeterScope();
        await using var server = DnsServer.Start(new DnsOptions { Port = 0 }, meters);
        await using var listener = await MetricsListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), meters);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var socket = new System.Net.Sockets.UdpClient();
        // A header claiming two questions and nothing after it: FORMERR.
        await socket.SendAsync(new byte[] { 0x12, 0x34, 0x01, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0 }, server.Endpoint);
        var answer = await socket.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, answer.Buffer[3] & 0x0F);

        var scrape = await Poll.UntilAsync(() => MetricsScrape.GetAsync(http, listener.Url),
            s => s.Sum("heddle_dns_queries_total", ("rcode", "FORMERR")) >= 1, Deadline, "the FORMERR counted");
        Assert.Equal(1, scrape.Sum("heddle_dns_queries_total", ("transport", "udp"), ("type", "other"), ("rcode", "FORMERR")));
    }

    [Fact]
    public async Task MetricsListener_OtherPaths_AreNotFound()
    {
        using var meters = new MeterScope();
        await using var listener = await MetricsListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), meters);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        using var other = await http.GetAsync(new Uri(listener.Url, "/"));
        using var post = await http.PostAsync(listener.Url, new StringContent("x"));

        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
    }

    private static LookupClient Client(DnsServer server, bool tcpOnly) =>
        new(new LookupClientOptions(new NameServer(server.Endpoint))
        {
            UseCache = false, Retries = 1, Timeout = TimeSpan.FromSeconds(5), UseTcpOnly = tcpOnly, ThrowDnsErrors = false, ContinueOnDnsError = false,
        });
}
