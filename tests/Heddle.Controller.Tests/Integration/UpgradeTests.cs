using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>Changing a running service with real agents and processes: scaling, manual walks, settings reloaded by signal, refusals.</summary>
[Collection(nameof(ClusterCollection))]
public sealed class UpgradeTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static string Configuration(string greeting, string upgrade = "{ healthCheckStable: 0s }") =>
        $"service: hello\nroles:\n  web:    {{ instances: 3, settings: {{ Greeting: \"{greeting}\" }} }}\n  worker: {{ instances: 1, settings: {{ IntervalSeconds: \"5\" }} }}\nupgrade: {upgrade}\n";

    private static async Task<UpgradeStatus> WaitForUpgradeAsync(TestCluster cluster, long revision, string state) =>
        await Poll.UntilAsync(() => cluster.Api.GetUpgradeAsync("hello"), u => u.Revision == revision && u.State == state, Deadline, $"upgrade to revision {revision} {state}");

    private static Dictionary<string, int> Pids(ServiceStatus status) => status.Instances.ToDictionary(i => i.Id, i => i.Pid);

    [Fact]
    public async Task Scale_UpThenDown_InstancesThatStayKeepTheirProcesses()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.DeploySampleAsync();
        var before = Pids(await cluster.WaitUntilReadyAsync("hello", 4, Deadline));

        var up = await cluster.Api.ScaleAsync("hello", "web", 5);
        var scaled = await Poll.UntilAsync(() => cluster.Api.GetServiceAsync("hello"),
            s => s.Instances.Count == 6 && s.Instances.All(i => i.State == InstanceStates.Ready && i.RunningRevision == up.Revision), Deadline, "6 instances Ready at the new revision");
        var down = await cluster.Api.ScaleAsync("hello", "web", 2);
        var after = await Poll.UntilAsync(() => cluster.Api.GetServiceAsync("hello"),
            s => s.Instances.Count == 3 && s.Instances.All(i => i.State == InstanceStates.Ready && i.RunningRevision == down.Revision), Deadline, "3 instances Ready at the new revision");

        Assert.False(up.Upgrade);
        Assert.Equal("instances web 3 → 5", up.Changes);
        Assert.All(before, p => Assert.Equal(p.Value, Pids(scaled)[p.Key]));
        Assert.Equal(["hello/web/0", "hello/web/1", "hello/worker/0"], after.Instances.Select(i => i.Id).Order());
        Assert.All(after.Instances, i => Assert.Equal(before[i.Id], i.Pid));
        await Poll.UntilAsync(() => cluster.InstanceProcesses().Count == 3, Deadline, "the removed instances' processes gone"); // 20 s was too short once in CI, with the unit tests beside the package build
        var events = await cluster.Api.ListEventsAsync();
        Assert.Equal(3, events.Count(e => e.Kind == "InstanceDraining"));
        // The last revision is marked Completed by the pass that sees its instances Ready, which may follow this read.
        var history = await Poll.UntilAsync(() => cluster.Api.ListRevisionsAsync("hello"), h => h.All(r => r.Outcome == "Completed"), Deadline, "every revision Completed");
        Assert.Equal([3L, 2L, 1L], history.Select(r => r.Number));
    }

    [Fact]
    public async Task Scale_BadRequests_SayWhatIsWrongAndChangeNothing()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        await cluster.DeploySampleAsync();

        var role = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.ScaleAsync("hello", "wbe", 2));
        var count = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.ScaleAsync("hello", "web", 0));
        var service = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.ScaleAsync("helo", "web", 2));
        var pause = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.UpgradeActionAsync("hello", "pause"));

        Assert.Equal("service hello has no role 'wbe'; did you mean 'web'?", role.Message);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, count.Status);
        Assert.Contains("0 instances is outside 1..1000", count.Message);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, service.Status);
        Assert.Equal(System.Net.HttpStatusCode.Conflict, pause.Status);
        Assert.Contains("has no upgrade in progress", pause.Message);
        Assert.Single(await cluster.Api.ListRevisionsAsync("hello"));
    }

    [Fact]
    public async Task ManualMode_WalksOneDomainPerResume_AndAnotherDeployIsRefusedMeanwhile()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.DeploySampleAsync(Configuration("hi"));
        var before = Pids(await cluster.WaitUntilReadyAsync("hello", 4, Deadline));

        var upload = await cluster.Api.UploadPackageAsync(SamplePackage.File);
        var accepted = await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("hey", "{ mode: manual, healthCheckStable: 0s }")));
        var waiting = await WaitForUpgradeAsync(cluster, accepted.Revision, UpgradeStates.WaitingForResume);
        var during = await cluster.Api.GetServiceAsync("hello");
        var refused = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("ho"))));

        Assert.True(accepted.Upgrade);
        Assert.Equal(["Done", "Pending", "Pending"], waiting.Domains.Select(d => d.State));
        Assert.All(during.Instances.Where(i => i.UpgradeDomain > 0), i => Assert.Equal((1L, before[i.Id]), (i.RunningRevision, i.Pid)));
        Assert.All(during.Instances.Where(i => i.UpgradeDomain == 0 && i.Role == "web"), i => Assert.NotEqual(before[i.Id], i.Pid));
        Assert.Equal(System.Net.HttpStatusCode.Conflict, refused.Status);
        Assert.Contains("has an upgrade in progress: revision 1 → 2", refused.Message);
        Assert.Contains("heddle upgrade pause|resume|rollback hello", refused.Message);

        await cluster.Api.UpgradeActionAsync("hello", "resume");
        var second = await Poll.UntilAsync(() => cluster.Api.GetUpgradeAsync("hello"), u => u.State == UpgradeStates.WaitingForResume && u.Domains[1].State == "Done", Deadline, "waiting after domain 1");
        Assert.Equal("Pending", second.Domains[2].State);
        await cluster.Api.UpgradeActionAsync("hello", "resume");
        await WaitForUpgradeAsync(cluster, accepted.Revision, UpgradeStates.Completed);

        var after = await cluster.WaitUntilReadyAsync("hello", 4, Deadline);
        using var http = new HttpClient();
        foreach (var web in after.Instances.Where(i => i.Role == "web"))
        {
            Assert.Equal($"hey from {web.Id}\n", await http.GetStringAsync($"http://{web.NodeAddress}:{web.Ports["http"]}/"));
        }

        Assert.Equal("Completed", (await cluster.Api.ListRevisionsAsync("hello")).First().Outcome);
    }

    [Fact]
    public async Task UpgradeRollback_ByAUser_WalksTheUpgradedDomainsBack_AndRollbackTo_StartsANewRevision()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.DeploySampleAsync(Configuration("hi"));
        await cluster.WaitUntilReadyAsync("hello", 4, Deadline);
        var upload = await cluster.Api.UploadPackageAsync(SamplePackage.File);
        var accepted = await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("hey", "{ mode: manual, healthCheckStable: 0s }")));
        await WaitForUpgradeAsync(cluster, accepted.Revision, UpgradeStates.WaitingForResume);

        await cluster.Api.UpgradeActionAsync("hello", "rollback");
        var rolledBack = await WaitForUpgradeAsync(cluster, accepted.Revision, UpgradeStates.RolledBack);
        var service = await cluster.WaitUntilReadyAsync("hello", 4, Deadline);

        Assert.Equal("rolled back by a user ('heddle upgrade rollback')", rolledBack.Reason);
        Assert.All(service.Instances, i => Assert.Equal(1, i.RunningRevision));
        Assert.Equal(1, service.Revision);
        Assert.StartsWith("RolledBack: rolled back by a user", (await cluster.Api.ListRevisionsAsync("hello")).Single(r => r.Number == 2).Outcome);

        var again = Assert.IsType<RollbackResult.NewRevision>(await cluster.Api.RollbackAsync("hello", to: 2)).Accepted;
        for (var domain = 0; domain < 2; domain++)
        {
            await Poll.UntilAsync(() => cluster.Api.GetUpgradeAsync("hello"), u => u.Revision == again.Revision && u.State == UpgradeStates.WaitingForResume && u.Domains[domain].State == "Done",
                Deadline, $"waiting after domain {domain}");
            await cluster.Api.UpgradeActionAsync("hello", "resume");
        }

        await WaitForUpgradeAsync(cluster, again.Revision, UpgradeStates.Completed);

        Assert.Equal(3, again.Revision);
        Assert.StartsWith("rollback to revision 2: settings web.Greeting", again.Changes);
    }

    [Fact]
    public async Task SettingsChange_OnASignalRole_ReachesTheSameProcessesBySigHupAndTheFile()
    {
        using var work = new TempDirectory();
        var package = SamplePackage.Variant(work, "hello-signal", yaml => yaml.Replace("    settings: [Greeting]", "    settings: [Greeting]\n    onSettingsChange: signal"));
        await using var cluster = await TestCluster.StartAsync();
        var upload = await cluster.Api.UploadPackageAsync(package);
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("hi")));
        var before = Pids(await cluster.WaitUntilReadyAsync("hello", 4, Deadline));

        var accepted = await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("hey")));
        await WaitForUpgradeAsync(cluster, accepted.Revision, UpgradeStates.Completed);
        var after = await cluster.Api.GetServiceAsync("hello");

        Assert.True(accepted.Upgrade);
        Assert.All(after.Instances, i => Assert.Equal((before[i.Id], accepted.Revision), (i.Pid, i.RunningRevision)));
        using var http = new HttpClient();
        foreach (var web in after.Instances.Where(i => i.Role == "web"))
        {
            var agent = cluster.Agents.Single(a => a!.Options.NodeName == web.Node)!;
            var directory = agent.Supervisor.DirectoryOf(web.Id)!;
            using var description = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "disk", "app", "heddle-instance.json")));
            Assert.Equal("hey", description.RootElement.GetProperty("settings").GetProperty("Greeting").GetString());
            await Poll.UntilAsync(() => File.ReadAllText(Path.Combine(directory, "logs", "stdout.log")).Contains("reloaded its settings on SIGHUP: Greeting=hey"),
                TimeSpan.FromSeconds(10), $"{web.Id} logging its reload");
            Assert.Equal($"hey from {web.Id}\n", await http.GetStringAsync($"http://{web.NodeAddress}:{web.Ports["http"]}/"));
        }
    }

    [Fact]
    public async Task SettingsChange_OnASignalRole_WhileItsAgentIsDown_IsSignalledWhenTheAgentAdoptsIt()
    {
        using var work = new TempDirectory();
        var package = SamplePackage.Variant(work, "hello-signal", yaml => yaml.Replace("    settings: [Greeting]", "    settings: [Greeting]\n    onSettingsChange: signal"));
        await using var cluster = await TestCluster.StartAsync(nodes: 1, nodeTimeout: TimeSpan.FromSeconds(60), coresPerNode: 4);
        var upload = await cluster.Api.UploadPackageAsync(package);
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("hi")));
        var web = (await cluster.WaitUntilReadyAsync("hello", 4, Deadline)).Instances.First(i => i.Role == "web");
        var stdout = Path.Combine(cluster.Agents[0]!.Supervisor.DirectoryOf(web.Id)!, "logs", "stdout.log");

        await cluster.StopAgentAsync(0, stopInstances: false);
        var accepted = await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("hey")));
        await cluster.StartAgentAsync(0);
        await WaitForUpgradeAsync(cluster, accepted.Revision, UpgradeStates.Completed);

        await Poll.UntilAsync(() => File.ReadAllText(stdout).Contains("reloaded its settings on SIGHUP: Greeting=hey"), TimeSpan.FromSeconds(10), "the adopted instance's reload");
        var after = (await cluster.Api.GetServiceAsync("hello")).Instances.Single(i => i.Id == web.Id);
        Assert.Equal(web.Pid, after.Pid);
        using var http = new HttpClient();
        Assert.Equal($"hey from {web.Id}\n", await http.GetStringAsync($"http://{after.NodeAddress}:{after.Ports["http"]}/"));
    }
}
