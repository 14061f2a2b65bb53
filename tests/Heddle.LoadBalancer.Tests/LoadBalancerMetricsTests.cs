using System.Net;
using System.Net.Sockets;
using System.Text;
using Heddle.Contracts.Api;
using Heddle.Contracts.Metrics;
using Heddle.Testing;

namespace Heddle.LoadBalancer.Tests;

public sealed class LoadBalancerMetricsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Metrics_AfterTcpAndHttpTraffic_CountConnectionsBytesRequestsAndChecksPerVipAndBackend()
    {
        using var a = new EchoBackend("a");
        using var b = new EchoBackend("b");
        await using var web = await NamedWebBackend.StartAsync("web");
        using var meters = new MeterScope();
        await using var host = new LoadBalancerHost(new LoadBalancerOptions(), meters);
        await using var listener = await MetricsListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), meters);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var probe = new BackendProbe("tcp", null, IntervalMilliseconds: 100, TimeoutMilliseconds: 1000, UnhealthyThreshold: 3);
        var ports = await HostPorts.ApplyAsync(host, 3, p => new LoadBalancerConfig
        {
            Version = 1,
            Listeners =
            [
                new VipListener("echo", "127.0.0.1", p[0], "tcp", [a.Backend, b.Backend], probe),
                new VipListener("site", "127.0.0.1", p[1], "http", [web.Backend]),
                new VipListener("empty", "127.0.0.1", p[2], "tcp", []),
            ],
        });
        var (tcpPort, httpPort, emptyPort) = (ports[0], ports[1], ports[2]);
        var tcpVip = $"127.0.0.1:{tcpPort}";
        var httpVip = $"127.0.0.1:{httpPort}";

        var before = await MetricsScrape.GetAsync(http, listener.Url);
        Assert.Equal(0, before.Sum("heddle_lb_connections_total"));

        const int Connections = 10;
        for (var i = 0; i < Connections; i++)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, tcpPort);
            var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.ASCII);
            Assert.Contains(await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)), new[] { "a", "b" });
            await stream.WriteAsync(Encoding.ASCII.GetBytes("ping\n"));
            Assert.Equal("ping", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
        }

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("web", await http.GetStringAsync($"http://{httpVip}/"));
        }

        const int Posted = 40_000, Answered = 60_000;
        for (var i = 0; i < 2; i++)
        {
            using var answer = await http.PostAsync($"http://{httpVip}/sized?size={Answered}", new ByteArrayContent(new byte[Posted]));
            Assert.Equal(Answered, (await answer.Content.ReadAsByteArrayAsync()).Length);
        }

        using (var refused = new TcpClient())
        {
            int read;
            try
            {
                // The balancer accepts and resets at once: the reset may come before the connect is seen complete.
                await refused.ConnectAsync(IPAddress.Loopback, emptyPort);
                read = await refused.GetStream().ReadAsync(new byte[1]).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is IOException or SocketException { SocketErrorCode: SocketError.ConnectionReset })
            {
                read = 0; // reset: nothing to relay to
            }

            Assert.Equal(0, read);
        }

        var after = await Poll.UntilAsync(() => MetricsScrape.GetAsync(http, listener.Url),
            s => s.Sum("heddle_lb_connections_open", ("vip", tcpVip)) == 0 && s.Sum("heddle_lb_health_checks_total", ("vip", tcpVip), ("result", "pass")) >= 2
                && s.Sum("heddle_lb_connections_refused_total", ("vip", $"127.0.0.1:{emptyPort}"), ("reason", "no_backend")) >= 1,
            Deadline, "the connections closed, health checks passed and the refused connection counted");

        Assert.Equal(Connections, after.Sum("heddle_lb_connections_total", ("service", "echo"), ("vip", tcpVip)));
        Assert.Equal(2, after.Series("heddle_lb_connections_total").Count(l => l["vip"] == tcpVip && l["backend"] is "a" or "b"));
        Assert.Equal(Connections * "ping\n".Length, after.Sum("heddle_lb_relayed_bytes_total", ("vip", tcpVip), ("direction", "in")));
        Assert.Equal(Connections * ("a\n".Length + "ping\n".Length), after.Sum("heddle_lb_relayed_bytes_total", ("vip", tcpVip), ("direction", "out")));
        Assert.Equal(0, after.Sum("heddle_lb_connect_failures_total", ("vip", tcpVip)));
        Assert.Equal(0, after.Sum("heddle_lb_connection_errors_total", ("vip", tcpVip)));
        Assert.Equal(2, after.Sum("heddle_lb_backend_healthy", ("vip", tcpVip)));
        Assert.Equal(7, after.Sum("heddle_lb_requests_total", ("service", "site"), ("vip", httpVip), ("backend", "web"), ("status_class", "2xx")));
        // HTTP bytes as passed on: the bodies plus the heads (a few hundred bytes a request at most).
        var httpIn = after.Sum("heddle_lb_relayed_bytes_total", ("vip", httpVip), ("backend", "web"), ("direction", "in"));
        var httpOut = after.Sum("heddle_lb_relayed_bytes_total", ("vip", httpVip), ("backend", "web"), ("direction", "out"));
        Assert.InRange(httpIn, 2 * Posted + 7 * 30, 2 * Posted + 7 * 400);
        Assert.InRange(httpOut, 2 * Answered + 5 * "web".Length + 7 * 30, 2 * Answered + 5 * "web".Length + 7 * 400);
    }

    [Fact]
    public async Task Metrics_ABackendThatRefuses_IsCountedAsAConnectFailure()
    {
        using var alive = new EchoBackend("alive");
        using var refusing = new RefusingPort(IPAddress.Loopback);
        var dead = new Backend("dead", "127.0.0.1", refusing.Port);
        using var meters = new MeterScope();
        await using var host = new LoadBalancerHost(new LoadBalancerOptions(), meters);
        await using var listener = await MetricsListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), meters);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var port = (await HostPorts.ApplyAsync(host, 1, p => new LoadBalancerConfig { Version = 1, Listeners = [new VipListener("svc", "127.0.0.1", p[0], "tcp", [alive.Backend, dead])] }))[0];

        // Some flows hash to the dead backend first: each of those is retried once on the live one.
        for (var i = 0; i < 20; i++)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            using var reader = new StreamReader(client.GetStream(), Encoding.ASCII);
            Assert.Equal("alive", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
        }

        var scrape = await MetricsScrape.GetAsync(http, listener.Url);
        Assert.Equal(20, scrape.Sum("heddle_lb_connections_total", ("backend", "alive")));
        Assert.Equal(0, scrape.Sum("heddle_lb_connections_total", ("backend", "dead")));
        Assert.InRange(scrape.Sum("heddle_lb_connect_failures_total", ("backend", "dead")), 1, 20);
    }
}
