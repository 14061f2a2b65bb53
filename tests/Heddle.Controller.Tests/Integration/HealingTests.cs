using System.Diagnostics;
using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>Service healing and restarts of the fabric's own parts, with real processes on loopback.</summary>
[Collection(nameof(ClusterCollection))]
public sealed class HealingTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AgentStopped_ItsInstancesAreReadyElsewhereWithinTheNodeTimeout()
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
            timeout + TimeSpan.FromSeconds(15), "instances Ready on the remaining nodes", TimeSpan.FromMilliseconds(100));

        Assert.All(after.Instances.Where(i => moved.Contains(i.Id)), i => Assert.NotEqual(victim, i.Node));
        Assert.Equal("Down", (await cluster.Api.ListNodesAsync()).Single(n => n.Name == victim).Condition);
        var events = await cluster.Api.ListEventsAsync();
        Assert.Contains(events, e => e.Kind == "NodeDown" && e.Subject == victim);
        Assert.Contains(events, e => e.Kind == "InstanceMoved" && moved.Contains(e.Subject));
        Assert.True(clock.Elapsed < timeout + TimeSpan.FromSeconds(15));
    }

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
    public async Task ControllerRestartedMidDeployment_CompletesWithNoDuplicateAndNoOrphan()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 3);
        var config = File.ReadAllText(SamplePackage.ConfigurationPath).Replace("instances: 3", "instances: 5");
        await cluster.DeploySampleAsync(config);

        await cluster.RestartControllerAsync();
        var service = await cluster.WaitUntilReadyAsync("hello", 6, Deadline);

        Assert.Equal(6, service.Instances.Select(i => i.Id).Distinct().Count());
        await Poll.UntilAsync(() => Task.FromResult(RunningInstanceProcesses()), n => n == 6, TimeSpan.FromSeconds(20), "exactly 6 instance processes on the machine");
        Assert.Equal(service.Instances.Select(i => i.Pid).Order(), RunningInstancePids().Order());
    }

    private static int RunningInstanceProcesses() => RunningInstancePids().Count;

    /// <summary>Sample processes on this machine (tests in this collection run one at a time).</summary>
    private static List<int> RunningInstancePids() =>
        [.. Directory.EnumerateDirectories("/proc")
            .Select(Path.GetFileName)
            .Where(p => int.TryParse(p, out _))
            .Where(p =>
            {
                try
                {
                    var cmdline = File.ReadAllText($"/proc/{p}/cmdline");
                    return cmdline.Contains("HelloWeb.dll") || cmdline.Contains("HelloWorker.dll");
                }
                catch (IOException)
                {
                    return false;
                }
            })
            .Select(p => int.Parse(p!))];
}
