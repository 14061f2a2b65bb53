using System.Net;
using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>/metrics of a controller and its agents, scraped as Prometheus would, while a service is deployed, upgraded and refused.</summary>
[Collection(nameof(ClusterCollection))]
public sealed class MetricsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static string Service(string name, int cores = 1) => $$"""
        name: {{name}}
        upgradeDomains: 2
        roles:
          job:
            entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
            size: { cores: {{cores}}, memoryMiB: 64 }
            settings: [Colour]
        """;

    private static string Configuration(string name, int instances, string colour) =>
        $"service: {name}\nroles:\n  job: {{ instances: {instances}, settings: {{ Colour: \"{colour}\" }} }}\nupgrade: {{ healthCheckStable: 0s }}\n";

    [Fact]
    public async Task Metrics_OfTheControllerAndAgents_MoveWithApiCallsDeploysUpgradesAndRefusals()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 2, containers: false, agentMetrics: true);
        using var work = new TempDirectory("heddle-metrics-");
        using var http = cluster.Controller.Http();
        var metricsToken = (await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Metrics: true, Description: "prometheus"))).Token;
        var url = new Uri(cluster.Controller.ApiUrl, "/metrics");

        var upload = await cluster.Api.UploadPackageAsync(TestPackages.Build(work, "ticker", Service("ticker")));
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("ticker", 2, "red")));
        await cluster.WaitUntilReadyAsync("ticker", 2, Deadline);
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("ticker", 2, "blue")));
        var big = await cluster.Api.UploadPackageAsync(TestPackages.Build(work, "huge", Service("huge", cores: 64)));
        await cluster.Api.DeployAsync(new DeploymentRequest(big.Sha256, Configuration("huge", 1, "red")));

        var controller = await Poll.UntilAsync(() => MetricsScrape.GetAsync(http, url, metricsToken),
            s => s.Sum("heddle_controller_upgrade_walks_total", ("outcome", "completed")) >= 1
                && s.Sum("heddle_controller_instances", ("service", "ticker"), ("state", InstanceStates.Ready)) == 2
                && s.Sum("heddle_controller_placement_failures_total") >= 1
                && s.Sum("heddle_controller_node_heartbeats_total") >= 2, // a second apart: a walk can finish before the second
            Deadline, "the walk completed, both instances Ready again, the huge one refused, heartbeats counted");
        Assert.True(controller.Sum("heddle_controller_api_requests_total", ("route", "/v1/deployments"), ("method", "POST"), ("status_class", "2xx")) >= 3, controller.Text);
        Assert.True(controller.Sum("heddle_controller_api_request_duration_seconds_count", ("route", "/v1/deployments"), ("method", "POST")) >= 3, controller.Text);
        Assert.DoesNotContain(controller.Series("heddle_controller_api_requests_total"), l => l["route"].Contains("ticker", StringComparison.Ordinal)); // templates, not paths
        Assert.Equal(2, controller.Sum("heddle_controller_placements_total")); // the walk restarts them where they are: no new placement
        Assert.Equal(2, controller.Sum("heddle_controller_upgrade_domains_total", ("direction", "forward")));
        Assert.Contains(controller.Series("heddle_controller_placement_failures_total"), l => l["rule"].Length > 0);
        Assert.True(controller.Sum("heddle_controller_reconcile_passes_total", ("result", "done")) >= 1, controller.Text);
        Assert.True(controller.Sum("heddle_controller_reconcile_duration_seconds_count") >= 1, controller.Text);
        Assert.Equal(2, controller.Sum("heddle_controller_nodes", ("condition", "Ready")));
        // The runtime's own figures (the process's, whichever host in it answers): how much of its time went to GC.
        Assert.True(controller.Sum("dotnet_gc_heap_total_allocated_bytes_total") > 0, controller.Text);
        Assert.NotEmpty(controller.Series("dotnet_gc_pause_time_seconds_total"));
        Assert.Equal(["gen0", "gen1", "gen2"], controller.Series("dotnet_gc_collections_total").Select(l => l["gc_heap_generation"]).Order());

        var agents = await Poll.UntilAsync(async () => await Task.WhenAll(cluster.Agents.Select(a => MetricsScrape.GetAsync(http, a!.MetricsUrl!))),
            scrapes => scrapes.Sum(s => s.Sum("heddle_agent_instances", ("service", "ticker"), ("state", InstanceStates.Ready))) == 2,
            Deadline, "both agents report the instances Ready");
        Assert.All(agents, s => Assert.True(s.Sum("heddle_agent_heartbeats_total") >= 1, s.Text));
        Assert.True(agents.Sum(s => s.Sum("heddle_agent_instance_starts_total", ("kind", "first"))) >= 4); // two started, then two again at the new revision
        Assert.True(agents.Sum(s => s.Sum("heddle_agent_probes_total", ("result", "pass"))) >= 2);

        var heartbeats = controller.Sum("heddle_controller_node_heartbeats_total");
        await Poll.UntilAsync(() => MetricsScrape.GetAsync(http, url, metricsToken), s => s.Sum("heddle_controller_node_heartbeats_total") > heartbeats, Deadline, "more heartbeats counted");
    }

    [Fact]
    public async Task Metrics_WithoutAValidToken_AreRefused_AndAMetricsTokenReadsNothingElse()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var http = cluster.Controller.Http();
        var metricsToken = (await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Metrics: true))).Token;
        var tenantToken = (await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token;

        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(http, "/metrics", null));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(http, "/metrics", "not-a-token-but-long-enough-to-be-looked-up-0123456789"));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(http, "/metrics", tenantToken));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(http, "/metrics", cluster.Controller.ApiToken));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(http, "/metrics", metricsToken));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(http, "/v1/services", metricsToken));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(http, "/v1/tokens", metricsToken));
        var problem = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.CreateTokenAsync(new TokenCreateRequest(Metrics: true, Tenant: "alice")));
        Assert.Contains("metrics token", problem.Message);
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient http, string path, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }
}
