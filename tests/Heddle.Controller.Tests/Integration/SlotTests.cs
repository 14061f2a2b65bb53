using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>
/// Staging and production slots with real agents and processes: staging runs beside production with a VIP and a DNS
/// name of its own; a swap exchanges what the two VIPs lead to without restarting anything, survives a controller
/// restart, and is refused, with a sentence and no change, when it must not happen.
/// </summary>
[Collection(nameof(ClusterCollection))]
public sealed class SlotTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static string Configuration(string greeting, int web = 2, string upgrade = "{ healthCheckStable: 0s }") =>
        $"service: hello\nroles:\n  web:    {{ instances: {web}, settings: {{ Greeting: \"{greeting}\" }} }}\n  worker: {{ instances: 1, settings: {{ IntervalSeconds: \"5\" }} }}\nupgrade: {upgrade}\n";

    private static async Task<ServiceStatus> DeployAsync(TestCluster cluster, string configuration, string? slot, string? package = null)
    {
        var upload = await cluster.Api.UploadPackageAsync(package ?? SamplePackage.File);
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, configuration, "hello.config.yaml", Slot: slot));
        return await cluster.Api.GetServiceAsync("hello", slot);
    }

    private static Task<ServiceStatus> ReadyAsync(TestCluster cluster, string? slot, int instances) =>
        Poll.UntilAsync(() => cluster.Api.GetServiceAsync("hello", slot), s => s.Instances.Count == instances && s.Instances.All(i => i.State == InstanceStates.Ready),
            Deadline, $"{instances} instances of hello ({slot ?? "production"}) Ready");

    private static async Task<HashSet<string>> BackendsAsync(TestCluster cluster, string vip) =>
        [.. (await cluster.Api.GetLoadBalancerConfigAsync()).Listeners.Where(l => l.Vip == vip).SelectMany(l => l.Backends).Select(b => b.Id)];

    [Fact]
    public async Task Staging_RunsBesideProduction_AndASwapExchangesWhatTheVipsLeadTo_WithoutRestarts_AndSurvivesARestart()
    {
        await using var cluster = await TestCluster.StartAsync();
        await DeployAsync(cluster, Configuration("v1"), slot: null);
        var production = await ReadyAsync(cluster, null, 3);
        await DeployAsync(cluster, Configuration("v2"), Slots.Staging);
        var staging = await ReadyAsync(cluster, Slots.Staging, 3);

        Assert.Equal(("hello", "production", "hello"), (production.Deployment, production.Slot, production.DnsName));
        Assert.Equal(("hello@2", "staging", "hello.staging"), (staging.Deployment, staging.Slot, staging.DnsName));
        Assert.NotNull(staging.Vip);
        Assert.NotEqual(production.Vip, staging.Vip);
        Assert.All(staging.Instances, i => Assert.StartsWith("hello@2/", i.Id));
        var dns = await Poll.UntilAsync(() => cluster.Api.GetDnsRecordsAsync(), d => d.Services.Any(s => s.Name == "hello.staging"), Deadline, "hello.staging in DNS");
        Assert.Equal([production.Vip!], dns.Services.Single(s => s.Name == "hello").Vips);
        Assert.Equal([staging.Vip!], dns.Services.Single(s => s.Name == "hello.staging").Vips);
        var pids = production.Instances.Concat(staging.Instances).ToDictionary(i => i.Id, i => i.Pid);

        var swapped = await cluster.Api.SwapAsync("hello");

        Assert.Equal(("hello@2", 1L, production.Vip, "hello", staging.Vip), (swapped.Production, swapped.ProductionRevision, swapped.ProductionVip, swapped.Staging, swapped.StagingVip));
        var webOf = (ServiceStatus s) => s.Instances.Where(i => i.Role == "web").Select(i => i.Id).ToHashSet();
        // The answer comes once the balancer's followers have the new view: its production VIP leads to the new instances.
        Assert.Equal(webOf(staging), await BackendsAsync(cluster, production.Vip!));
        Assert.Equal(webOf(production), await BackendsAsync(cluster, staging.Vip!));
        var afterProduction = await cluster.Api.GetServiceAsync("hello");
        Assert.Equal(("hello@2", production.Vip, "hello"), (afterProduction.Deployment, afterProduction.Vip, afterProduction.DnsName));
        Assert.All(afterProduction.Instances.Concat((await cluster.Api.GetServiceAsync("hello", Slots.Staging)).Instances), i => Assert.Equal(pids[i.Id], i.Pid));

        await cluster.RestartControllerAsync();
        var restarted = await cluster.Api.GetServiceAsync("hello");
        var restartedStaging = await cluster.Api.GetServiceAsync("hello", Slots.Staging);
        Assert.Equal(("hello@2", production.Vip), (restarted.Deployment, restarted.Vip));
        Assert.Equal(("hello", staging.Vip), (restartedStaging.Deployment, restartedStaging.Vip));
        Assert.Equal(webOf(staging), await BackendsAsync(cluster, production.Vip!));

        // A second swap brings the first version back the same way.
        var back = await cluster.Api.SwapAsync("hello");
        Assert.Equal(("hello", production.Vip), (back.Production, back.ProductionVip));
        Assert.Equal(webOf(production), await BackendsAsync(cluster, production.Vip!));

        // Deleting the staging slot leaves production serving; deleting the service takes both.
        await cluster.Api.DeleteServiceAsync("hello", Slots.Staging);
        await Poll.UntilAsync(() => cluster.Api.ListServicesAsync(), s => s.Count == 1 && s[0].Slot == "production" && s[0].Deployment == "hello", Deadline, "only production left");
        Assert.Equal(webOf(production), await BackendsAsync(cluster, production.Vip!));
        await DeployAsync(cluster, Configuration("v3"), Slots.Staging);
        await cluster.Api.DeleteServiceAsync("hello");
        try
        {
            await Poll.UntilAsync(() => cluster.Api.ListServicesAsync(), s => s.Count == 0, Deadline, "both slots deleted");
        }
        finally
        {
            foreach (var i in await cluster.Api.ListInstancesAsync())
            {
                output.WriteLine($"{i.Id} {i.State} g{i.Generation} {i.Node} {i.Reason}");
            }

            foreach (var e in (await cluster.Api.ListEventsAsync()).TakeLast(40))
            {
                output.WriteLine($"{e.Kind} {e.Subject} {e.Message}");
            }
        }
    }

    [Fact]
    public async Task Swap_IsRefusedWithASentence_AndChangesNothing_WhenItMustNotHappen()
    {
        using var work = new TempDirectory();
        await using var cluster = await TestCluster.StartAsync();
        await DeployAsync(cluster, Configuration("v1"), slot: null);
        var production = await ReadyAsync(cluster, null, 3);

        async Task<string> RefusedAsync()
        {
            var refused = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.SwapAsync("hello"));
            Assert.Equal(System.Net.HttpStatusCode.Conflict, refused.Status);
            var now = await cluster.Api.GetServiceAsync("hello");
            Assert.Equal((production.Deployment, production.Vip, production.Revision), (now.Deployment, now.Vip, now.Revision));
            return refused.Message;
        }

        Assert.Equal("service hello has no staging slot to swap with; deploy the new version there first with 'heddle deploy PACKAGE --config CONFIG --slot staging'; nothing was changed",
            await RefusedAsync());

        // Staging whose web instances never become Ready (their entry point exits).
        var broken = SamplePackage.Variant(work, "broken", yaml => yaml.Replace("args: [HelloWeb.dll]", "args: [Missing.dll]"));
        await DeployAsync(cluster, Configuration("v2"), Slots.Staging, broken);
        await Poll.UntilAsync(() => cluster.Api.GetServiceAsync("hello", Slots.Staging), s => s.Instances.Count == 3, Deadline, "staging placed");
        Assert.StartsWith("not every instance of hello's staging slot is Ready (hello@2/web/", await RefusedAsync());
        await cluster.Api.DeleteServiceAsync("hello", Slots.Staging);
        await Poll.UntilAsync(() => cluster.Api.ListServicesAsync(), s => s.Count == 1, Deadline, "broken staging deleted");

        // Staging with another public port.
        var moved = SamplePackage.Variant(work, "moved", yaml => yaml.Replace("port: 8080", "port: 8081"));
        await DeployAsync(cluster, Configuration("v2"), Slots.Staging, moved);
        await ReadyAsync(cluster, Slots.Staging, 3);
        Assert.Equal("the slots of hello do not have the same input endpoints (production only: web.http http port 8080; staging only: web.http http port 8081): "
            + "a swap must not change what the VIP listens on; deploy staging with the same endpoints; nothing was changed", await RefusedAsync());
        await cluster.Api.DeleteServiceAsync("hello", Slots.Staging);
        await Poll.UntilAsync(() => cluster.Api.ListServicesAsync(), s => s.Count == 1, Deadline, "moved staging deleted");

        // Staging in the middle of a manual upgrade.
        await DeployAsync(cluster, Configuration("v2", upgrade: "{ mode: manual, healthCheckStable: 0s }"), Slots.Staging);
        await ReadyAsync(cluster, Slots.Staging, 3);
        await cluster.Api.DeployAsync(new DeploymentRequest((await cluster.Api.GetServiceAsync("hello", Slots.Staging)).PackageSha256,
            Configuration("v3", upgrade: "{ mode: manual, healthCheckStable: 0s }"), Slot: Slots.Staging));
        Assert.StartsWith("the staging slot of hello has an upgrade in progress (revision 1 → 2", await RefusedAsync());
    }
}
