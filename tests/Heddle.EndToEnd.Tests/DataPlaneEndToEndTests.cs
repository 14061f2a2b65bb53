using System.Diagnostics;
using System.Text.Json;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// Under `heddle up` DNS and the load balancer run in processes of their own: a controller killed with -9 interrupts
/// neither `dig` nor a client loop through a VIP, and a DNS server or load balancer that dies is started again where
/// clients already look.
/// </summary>
[Collection(UpCollection.Name)]
public sealed class DataPlaneEndToEndTests
{
    [Fact]
    public async Task ControllerKilled_DigAndTheVipKeepAnswering_AndADeadDnsOrLbComesBackInPlace()
    {
        // The default node timeout (10 s): a controller restart (about 1.3 s here) is well within it, so no node fences itself.
        await using var up = await UpCluster.StartAsync("--node-timeout", "10s");
        var (dns, vip) = up.DeploySample();
        var processes = up.Processes();
        Assert.True(processes.ContainsKey("dns") && processes.ContainsKey("lb"), string.Join(", ", processes.Keys));
        Assert.NotEqual(processes["controller"], processes["dns"]);
        string Dig() => ProcessRunner.Run("dig", ["@" + dns.Address, "-p", dns.Port.ToString(), "+short", "+tries=1", "+time=2", "hello.heddle.internal"], TimeSpan.FromSeconds(10)).Stdout.Trim();
        Assert.Equal(vip, Dig());

        await using (var loop = ClientLoop.Start($"http://{vip}:8080/"))
        {
            await loop.WaitForAnswerAsync("hi");
            Process.GetProcessById(processes["controller"]).Kill();
            var digs = new List<string>();
            // While the controller is down and until it answers again: every dig and every request still answered.
            while (up.Run("info").ExitCode != 0 || digs.Count == 0)
            {
                digs.Add(Dig());
            }

            var before = loop.Answers.Count;
            await Poll.UntilAsync(() => loop.Answers.Count > before + 5, TimeSpan.FromSeconds(10), "more requests through the VIP");
            var seen = await loop.StopAsync();
            Assert.All(digs, d => Assert.Equal(vip, d));
            Assert.True(seen.Failed == 0, string.Join('\n', loop.Failures));
            Assert.Equal(["hi"], seen.Changes);
        }

        Assert.NotEqual(processes["controller"], up.Processes()["controller"]);
        Assert.Equal(processes["dns"], up.Processes()["dns"]);
        Assert.Equal(processes["lb"], up.Processes()["lb"]);

        // Each process serves /metrics where up.json says, and its counters moved with that traffic.
        var metrics = up.MetricsUrls();
        using var scraper = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var dnsMetrics = await MetricsScrape.GetAsync(scraper, metrics["dns"]);
        Assert.True(dnsMetrics.Sum("heddle_dns_queries_total", ("transport", "udp"), ("type", "A"), ("rcode", "NOERROR")) >= 2, dnsMetrics.Text);
        var lbMetrics = await MetricsScrape.GetAsync(scraper, metrics["lb"]);
        Assert.True(lbMetrics.Sum("heddle_lb_requests_total", ("service", "hello"), ("status_class", "2xx")) >= 5, lbMetrics.Text);
        Assert.True(lbMetrics.Sum("heddle_lb_relayed_bytes_total", ("service", "hello"), ("direction", "out")) > 0, lbMetrics.Text);
        var agentsReady = 0.0;
        foreach (var node in new[] { "n1", "n2", "n3" })
        {
            agentsReady += (await MetricsScrape.GetAsync(scraper, metrics[node])).Sum("heddle_agent_instances", ("state", "Ready"));
        }

        using var status = JsonDocument.Parse(up.Run("status", "hello", "-o", "json").Stdout);
        Assert.Equal(status.RootElement.GetProperty("instances").EnumerateArray().Count(i => i.GetProperty("state").GetString() == "Ready"), (int)agentsReady);

        // A DNS server killed with -9 is started again on the same address and port.
        Process.GetProcessById(processes["dns"]).Kill();
        await Poll.UntilAsync(() => up.Processes()["dns"] != processes["dns"], TimeSpan.FromSeconds(30), "heddle up to start DNS again");
        await Poll.UntilAsync(() => Task.FromResult(Dig()), d => d == vip, TimeSpan.FromSeconds(30), "the new DNS server to answer on the same port");

        // So is a load balancer, on the same VIPs.
        Process.GetProcessById(processes["lb"]).Kill();
        await Poll.UntilAsync(() => up.Processes()["lb"] != processes["lb"], TimeSpan.FromSeconds(30), "heddle up to start the load balancer again");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await Poll.UntilAsync(async () =>
        {
            try
            {
                return (await http.GetStringAsync($"http://{vip}:8080/")).StartsWith("hi from hello/web/", StringComparison.Ordinal);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }, ok => ok, TimeSpan.FromSeconds(30), "the VIP to answer through the new load balancer");

        // The new balancer serves its metrics where the old one did, counting afresh.
        Assert.Equal(metrics["lb"], up.MetricsUrls()["lb"]);
        var fresh = await MetricsScrape.GetAsync(scraper, metrics["lb"]);
        Assert.True(fresh.Sum("heddle_lb_requests_total", ("service", "hello")) >= 1, fresh.Text);
    }

    [Fact]
    public async Task AVipSquattedBeforeTheServiceGetsIt_IsReported_AndTheServiceMovesToAnotherVip()
    {
        await using var up = await UpCluster.StartAsync();
        var controller = up.Processes()["controller"];
        // The first VIP of the pool, taken on the service's port before the service exists (as an instance could).
        using var squatter = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Parse("127.77.0.1"), 8080);
        squatter.Start();
        try
        {
            var deploy = up.Run("deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath, "--wait");
            Assert.True(deploy.ExitCode == 0, deploy.ToString());
            var vip = await Poll.UntilAsync(() =>
            {
                using var status = JsonDocument.Parse(up.Run("status", "hello", "-o", "json").Stdout);
                return Task.FromResult(status.RootElement.GetProperty("vip").GetString()!);
            }, v => v != "127.77.0.1", TimeSpan.FromSeconds(30), "hello to move off the squatted VIP");

            var events = up.Run("events");
            Assert.Contains($"hello moved from VIP 127.77.0.1 to {vip}: the load balancer cannot listen on 127.77.0.1:8080", events.Stdout);
            using var info = JsonDocument.Parse(up.Run("info", "-o", "json").Stdout);
            var dns = System.Net.IPEndPoint.Parse(info.RootElement.GetProperty("dnsAddress").GetString()!);
            await Poll.UntilAsync(() => Task.FromResult(ProcessRunner.Run("dig", ["@" + dns.Address, "-p", dns.Port.ToString(), "+short", "hello.heddle.internal"], TimeSpan.FromSeconds(10)).Stdout.Trim()),
                d => d == vip, TimeSpan.FromSeconds(10), "DNS to answer the new VIP");
            var curl = await Poll.UntilAsync(() => Task.FromResult(ProcessRunner.Run("curl", ["-sS", "--max-time", "5", $"http://{vip}:8080/"], TimeSpan.FromSeconds(10))),
                r => r.ExitCode == 0, TimeSpan.FromSeconds(30), "curl through the new VIP");
            Assert.StartsWith("hi from hello/web/", curl.Stdout);
            Assert.Equal(controller, up.Processes()["controller"]);
        }
        finally
        {
            squatter.Stop();
        }
    }
}
