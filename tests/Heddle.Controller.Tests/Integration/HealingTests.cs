using System.Diagnostics;
using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>Service healing and restarts of the fabric's own parts, with real processes on loopback.</summary>
[Collection(nameof(ClusterCollection))]
public sealed class HealingTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AgentStopped_ItsInstancesAreReadyElsewhere_AndTheNodeIsDown()
    {
        var timeout = TimeSpan.FromSeconds(2);
        await using var cluster = await TestCluster.StartAsync(nodes: 3, nodeTimeout: timeout);
        await cluster.DeploySampleAsync();
        var before = await cluster.WaitUntilReadyAsync("hello", 4, Deadline);
        var victim = before.Instances.First(i => i.Role == "web").Node;
        var moved = before.Instances.Where(i => i.Node == victim).Select(i => i.Id).ToHashSet();

        var clock = Stopwatch.StartNew();
        await cluster.StopAgentAsync(int.Parse(victim[1..]) - 1, stopInstances: true);
        var after = await Poll.UntilAsync(() => cluster.Api.GetServiceAsync("hello"),
            s => s.Instances.Count == 4 && s.Instances.All(i => i.State == InstanceStates.Ready && i.Node != victim),
            Deadline, "instances Ready on the remaining nodes", TimeSpan.FromMilliseconds(100));
        output.WriteLine($"Ready elsewhere {clock.Elapsed.TotalSeconds:0.0} s after the agent stopped (node timeout {timeout.TotalSeconds:0} s)"); // how fast is the deploy/heal benchmarks' to say

        Assert.All(after.Instances.Where(i => moved.Contains(i.Id)), i => Assert.NotEqual(victim, i.Node));
        Assert.Equal("Down", (await cluster.Api.ListNodesAsync()).Single(n => n.Name == victim).Condition);
        var events = await cluster.Api.ListEventsAsync();
        Assert.Contains(events, e => e.Kind == "NodeDown" && e.Subject == victim);
        Assert.Contains(events, e => e.Kind == "InstanceMoved" && moved.Contains(e.Subject));
    }

    [Fact]
    public async Task EachInstanceKnowsItsPeers_AndLearnsWhereAMovedPeerWent_WithoutARestart()
    {
        var timeout = TimeSpan.FromSeconds(2);
        await using var cluster = await TestCluster.StartAsync(nodes: 3, nodeTimeout: timeout);
        await cluster.DeploySampleAsync();
        var before = (await cluster.WaitUntilReadyAsync("hello", 4, Deadline)).Instances.Where(i => i.Role == "web").ToList();
        foreach (var instance in before)
        {
            await Poll.UntilAsync(() => Task.FromResult(Peers(cluster, instance)), peers => peers == Expected(before, instance), Deadline, $"{instance.Id} lists its two peers, Ready");
        }

        var moved = before[0];
        await cluster.StopAgentAsync(int.Parse(moved.Node[1..]) - 1, stopInstances: true);
        var after = await Poll.UntilAsync(async () => (await cluster.Api.GetServiceAsync("hello")).Instances.Where(i => i.Role == "web").ToList(),
            web => web.All(i => i.State == InstanceStates.Ready && i.Node != moved.Node), Deadline, "the moved instance Ready elsewhere");

        foreach (var stayed in before.Skip(1))
        {
            await Poll.UntilAsync(() => Task.FromResult(Peers(cluster, stayed)), peers => peers == Expected(after, stayed), TimeSpan.FromSeconds(10), $"{stayed.Id} sees where {moved.Id} went");
            Assert.Equal(stayed.Pid, after.Single(i => i.Id == stayed.Id).Pid); // a peer change is no reason to restart
        }
    }

    /// <summary>The peers in an instance's heddle-instance.json, as "id@address:port ready" lines in index order.</summary>
    private static string Peers(TestCluster cluster, InstanceStatus instance)
    {
        var agent = cluster.Agents.Single(a => a?.Options.NodeName == instance.Node)!;
        var file = Path.Combine(agent.Supervisor.DirectoryOf(instance.Id)!, "disk", "app", "heddle-instance.json");
        using var description = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
        return string.Join('\n', description.RootElement.GetProperty("peers").EnumerateArray().Select(p =>
            $"{p.GetProperty("instance").GetString()}@{p.GetProperty("address").GetString()}:{(p.GetProperty("ports").TryGetProperty("http", out var port) ? port.GetInt32() : 0)} {(p.GetProperty("ready").GetBoolean() ? "ready" : "not ready")}"));
    }

    private static string Expected(IReadOnlyList<InstanceStatus> web, InstanceStatus self) =>
        string.Join('\n', web.Where(i => i.Id != self.Id).OrderBy(i => i.Index).Select(i => $"{i.Id}@{i.NodeAddress}:{i.Ports["http"]} ready"));

    [Fact]
    public async Task InstanceKilled_IsRestartedOnItsNode()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 3);
        await cluster.DeploySampleAsync();
        var before = (await cluster.WaitUntilReadyAsync("hello", 4, Deadline)).Instances.First(i => i.Role == "web");

        Process.GetProcessById(before.Pid).Kill();

        var after = await Poll.UntilAsync(async () => (await cluster.Api.GetServiceAsync("hello")).Instances.Single(i => i.Id == before.Id),
            i => i.Restarts >= 1 && i.State == InstanceStates.Ready && i.Pid != before.Pid, Deadline, "the killed instance Ready again");

        Assert.Equal(before.Node, after.Node);
        Assert.Contains(await cluster.Api.ListEventsAsync(), e => e.Subject == before.Id && e.Message.StartsWith("Faulted", StringComparison.Ordinal) && e.Message.Contains("exited with code"));
    }

    [Fact]
    public async Task AgentRestarted_NoInstanceIsRestarted()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 3);
        await cluster.DeploySampleAsync();
        var before = (await cluster.WaitUntilReadyAsync("hello", 4, Deadline)).Instances.ToDictionary(i => i.Id);
        var node = before.Values.First().Node;
        var index = int.Parse(node[1..]) - 1;
        var last = (await cluster.Api.ListEventsAsync()).Max(e => e.Id);

        await cluster.StopAgentAsync(index, stopInstances: false);
        await cluster.StartAgentAsync(index);
        await Poll.UntilAsync(() => Task.FromResult(cluster.Agents[index]!.Connection.Connected), c => c, Deadline, "agent reconnected");
        var after = await cluster.WaitUntilReadyAsync("hello", 4, Deadline);

        foreach (var instance in after.Instances)
        {
            Assert.Equal(before[instance.Id].Pid, instance.Pid);
            Assert.Equal(before[instance.Id].Node, instance.Node);
            Assert.Equal(0, instance.Restarts);
        }

        var since = await cluster.Api.ListEventsAsync(last);
        Assert.DoesNotContain(since, e => e.Kind is "InstanceMoved" or "InstancePlaced" || e.Message.StartsWith("Stopping", StringComparison.Ordinal));
        using var http = new HttpClient();
        foreach (var web in after.Instances.Where(i => i.Role == "web"))
        {
            Assert.Equal($"hi from {web.Id}\n", await http.GetStringAsync($"http://{web.NodeAddress}:{web.Ports["http"]}/"));
        }
    }

    [Fact]
    public async Task ControllerDownLongerThanTheNodeTimeout_NoInstanceIsStoppedMovedOrRestarted()
    {
        // The agents fence after the node timeout without a word from the controller, but a controller that refuses
        // connections is not running and cannot have given their instances to anyone: the data plane stays up.
        var timeout = TimeSpan.FromSeconds(2);
        await using var cluster = await TestCluster.StartAsync(nodes: 3, nodeTimeout: timeout);
        await cluster.DeploySampleAsync();
        var before = (await cluster.WaitUntilReadyAsync("hello", 4, Deadline)).Instances.ToDictionary(i => i.Id);
        var last = (await cluster.Api.ListEventsAsync()).Max(e => e.Id);
        var started = before.Values.ToDictionary(i => i.Id, i => Agent.Drivers.Posix.StartTime(i.Pid)!.Value);

        await cluster.StopControllerAsync(0);
        var agents = cluster.Agents.Select(a => a!).ToList();
        await Poll.UntilAsync(() => agents.All(a => Environment.TickCount64 - a.Connection.LastHeard > 3 * timeout.TotalMilliseconds),
            TimeSpan.FromSeconds(30), "three node timeouts without the controller");
        Assert.All(agents, a => Assert.False(a.Fenced, $"{a.Options.NodeName} fenced itself though no controller was running"));
        Assert.All(before.Values, i => Assert.True(Agent.Drivers.Posix.IsAlive(i.Pid, started[i.Id]), $"{i.Id} (pid {i.Pid}) was stopped while the controller was down"));

        await cluster.StartControllerAsync(0);
        await Poll.UntilAsync(() => agents.All(a => a.Connection.Connected), Deadline, "every agent connected again");
        var after = await cluster.WaitUntilReadyAsync("hello", 4, Deadline);
        var since = await cluster.Api.ListEventsAsync(last);
        var story = string.Join('\n', since.Select(e => $"{e.Time:HH:mm:ss.fff} {e.Kind} {e.Subject}: {e.Message}"));
        foreach (var instance in after.Instances)
        {
            var was = before[instance.Id];
            Assert.True((was.Node, was.Pid, was.Generation) == (instance.Node, instance.Pid, instance.Generation),
                $"{instance.Id} was pid {was.Pid} on {was.Node} (generation {was.Generation}) and is pid {instance.Pid} on {instance.Node} (generation {instance.Generation}, "
                + $"{instance.Restarts} restarts, {instance.State}: {instance.Reason})\nevents since the stop:\n{story}\nagents' logs:\n{cluster.AgentLogs}");
        }

        Assert.DoesNotContain(since, e => e.Kind is "NodeDown" or "InstanceMoved" or "InstancePlaced");
    }

    [Fact]
    public async Task ControllerRestartedMidDeployment_CompletesWithNoDuplicateAndNoOrphan()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 3);
        var config = File.ReadAllText(SamplePackage.ConfigurationPath).Replace("instances: 3", "instances: 5");
        await cluster.DeploySampleAsync(config);

        await cluster.RestartControllerAsync();
        var service = await cluster.WaitUntilReadyAsync("hello", 6, Deadline);

        Assert.Equal(6, service.Instances.Select(i => i.Id).Distinct().Count());
        var pids = await Poll.UntilAsync(() => Task.FromResult(cluster.InstanceProcesses()), p => p.Count == 6, TimeSpan.FromSeconds(20), "exactly 6 instance processes of this cluster");
        Assert.Equal(service.Instances.Select(i => i.Pid).Order(), pids.Order());
    }
}

/// <summary>Healing cases that need a package of their own.</summary>
[Collection(nameof(ClusterCollection))]
public sealed class FaultingTests
{
    [Fact]
    public async Task InstanceThatKeepsFaultingOnItsNode_IsMovedToAnother()
    {
        using var work = new TempDirectory("heddle-flaky-"); // removed after the cluster has stopped the instance that writes in it
        await using var cluster = await TestCluster.StartAsync(nodes: 3);
        File.SetUnixFileMode(work.Path, (UnixFileMode)0b111_111_111); // the instance runs as a uid of its own and keeps its mark here
        var mark = work.Combine("first-node");
        // Fails on whichever node it lands on first, and runs anywhere else.
        var script = $"first=$(cat {mark} 2>/dev/null); if [ -z \"$first\" ]; then echo \"$HEDDLE_NODE\" > {mark}.new && mv {mark}.new {mark}; first=$HEDDLE_NODE; fi; " +
                     "if [ \"$first\" = \"$HEDDLE_NODE\" ]; then echo \"cannot run on $HEDDLE_NODE\" >&2; exit 3; fi; exec sleep 600";
        var package = TestPackages.Build(work, "flaky", $$"""
            name: flaky
            roles:
              job:
                entryPoint: { command: /bin/sh, args: ["-c", {{System.Text.Json.JsonSerializer.Serialize(script)}}] }
                size: { cores: 1, memoryMiB: 64 }
            """);
        var upload = await cluster.Api.UploadPackageAsync(package);
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, "service: flaky\nroles:\n  job: { instances: 1 }\n"));

        var moved = await Poll.UntilAsync(async () => (await cluster.Api.GetServiceAsync("flaky")).Instances.Single(),
            i => i.State == InstanceStates.Ready && FirstNode() is { Length: > 0 } first && i.Node != first, TimeSpan.FromSeconds(60), "the instance Ready on another node");

        var events = await cluster.Api.ListEventsAsync();
        Assert.Contains(events, e => e.Kind == "InstanceMoved" && e.Subject == "flaky/job/0" && e.Message.Contains("restarted 5 times on node"));
        Assert.Contains(events, e => e.Subject == "flaky/job/0" && e.Message.StartsWith("Faulted", StringComparison.Ordinal) && e.Message.Contains("exited with code 3"));
        Assert.NotEqual(FirstNode(), moved.Node);

        // The first start reports Ready before its script has written the mark (or while the file is still empty): only a
        // written mark says which node it failed on.
        string FirstNode() => File.Exists(mark) ? File.ReadAllText(mark).Trim() : string.Empty;
    }

    /// <summary>
    /// Preparing an instance fails (here its folder cannot be made: a file stands where it goes; after an agent restart
    /// it was a package evicted under it): the instance is reported Faulted with the reason and prepared again with
    /// backoff until it runs, never left Stopped for good.
    /// </summary>
    [Fact]
    public async Task APreparationThatFails_IsReportedWithItsReason_AndRetriedUntilTheInstanceRuns()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        using var work = new TempDirectory("heddle-prepare-");
        var package = TestPackages.Build(work, "blocked", """
            name: blocked
            roles:
              job:
                entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
                size: { cores: 1, memoryMiB: 64 }
            """);
        var obstacle = Path.Combine(cluster.AgentOptions(0).StateDirectory, "instances", "blocked");
        await File.WriteAllTextAsync(obstacle, "a file where the service's folder goes");
        var upload = await cluster.Api.UploadPackageAsync(package);
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, "service: blocked\nroles:\n  job: { instances: 1 }\n"));

        var faulted = await Poll.UntilAsync(async () => (await cluster.Api.GetServiceAsync("blocked")).Instances.SingleOrDefault(),
            i => i is { State: InstanceStates.Faulted } && i.Reason?.Contains("preparing the instance failed") == true, TimeSpan.FromSeconds(30), "the instance Faulted with the reason");
        Assert.Contains("retrying in", faulted!.Reason);
        await Poll.UntilAsync(() => cluster.Api.ListEventsAsync(), e => e.Any(x => x.Subject == "blocked/job/0" && x.Message.Contains("preparing the instance failed")), TimeSpan.FromSeconds(10), "an event with the reason");

        File.Delete(obstacle);
        await cluster.WaitUntilReadyAsync("blocked", 1, TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task NodeThatReturnsAfterItsInstancesMoved_StopsWhatItNoLongerOwns()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 3, nodeTimeout: TimeSpan.FromSeconds(2));
        await cluster.DeploySampleAsync();
        var before = await cluster.WaitUntilReadyAsync("hello", 4, TimeSpan.FromSeconds(60));
        var web = before.Instances.First(i => i.Role == "web");
        var index = int.Parse(web.Node[1..]) - 1;
        var orphans = before.Instances.Where(i => i.Node == web.Node).Select(i => i.Pid).ToList();

        await cluster.StopAgentAsync(index, stopInstances: false);
        await Poll.UntilAsync(() => cluster.Api.GetServiceAsync("hello"),
            s => s.Instances.All(i => i.Node != web.Node && i.State == InstanceStates.Ready), TimeSpan.FromSeconds(30), "instances moved off the silent node");
        Assert.All(orphans, pid => Assert.True(File.Exists($"/proc/{pid}/stat"), "the silent node's instances still run, as on a partitioned machine"));

        await cluster.StartAgentAsync(index);

        await Poll.UntilAsync(() => orphans.All(pid => !Running(pid)), TimeSpan.FromSeconds(30), "the returning node to stop its old instances");
        var nodes = await Poll.UntilAsync(() => cluster.Api.ListNodesAsync(), n => n.Single(x => x.Name == web.Node).Condition == "Ready", TimeSpan.FromSeconds(10), "node Ready again");
        Assert.Equal(0, nodes.Single(x => x.Name == web.Node).Instances);
        Assert.Contains(await cluster.Api.ListEventsAsync(), e => e.Kind == "NodeUp" && e.Subject == web.Node);
    }

    private static bool Running(int pid) => File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ");
}
