using System.Diagnostics;
using Heddle.Agent.Drivers;
using Heddle.Contracts.Api;
using Heddle.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Controller.Tests.Integration;

/// <summary>
/// Fencing: a node cut off from the controller longer than the node timeout has its instances replaced elsewhere, and
/// its agent stops the old copies itself, so two Ready copies of one instance never serve together for longer than
/// --fence-after + 1 s; when the link comes back the node takes its goal state again and runs no second copy.
/// </summary>
[Collection(nameof(ClusterCollection))]
public sealed class FencingTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly TimeSpan NodeTimeout = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task ACutOffNode_StopsItsCopies_BeforeOrAsTheirReplacementsServe()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 2, nodeTimeout: NodeTimeout, coresPerNode: 2, cuttable: true);
        await cluster.DeploySampleAsync("service: hello\nroles:\n  web:    { instances: 1, settings: { Greeting: \"hi\" } }\n  worker: { instances: 1, settings: { IntervalSeconds: \"5\" } }\n");
        var before = (await cluster.WaitUntilReadyAsync("hello", 2, TimeSpan.FromSeconds(60))).Instances.Single(i => i.Role == "web");
        var node = int.Parse(before.Node[1..]) - 1;
        var started = Posix.StartTime(before.Pid)!.Value;

        await cluster.Links[node].CutAsync();
        var cut = Stopwatch.StartNew();
        TimeSpan? firstBoth = null, lastBoth = null, oldGone = null, replacementReady = null;
        while (cut.Elapsed < TimeSpan.FromSeconds(40) && (oldGone is null || replacementReady is null))
        {
            var oldAlive = Posix.IsAlive(before.Pid, started);
            var replacement = (await cluster.Api.GetServiceAsync("hello")).Instances.FirstOrDefault(i => i.Role == "web" && i.Node != before.Node && i.State == InstanceStates.Ready);
            if (oldAlive && replacement is not null)
            {
                firstBoth ??= cut.Elapsed;
                lastBoth = cut.Elapsed;
            }

            oldGone ??= oldAlive ? null : cut.Elapsed;
            replacementReady ??= replacement is null ? null : cut.Elapsed;
            await Task.Delay(50);
        }

        output.WriteLine($"old copy gone after {oldGone?.TotalSeconds:0.00} s, replacement Ready after {replacementReady?.TotalSeconds:0.00} s, both serving {firstBoth?.TotalSeconds:0.00}..{lastBoth?.TotalSeconds:0.00} s");
        Assert.NotNull(oldGone);
        Assert.NotNull(replacementReady);
        Assert.True(cluster.Agents[node]!.Fenced, "the cut-off agent does not say it fenced itself");
        var overlap = lastBoth is null ? TimeSpan.Zero : lastBoth.Value - firstBoth!.Value;
        Assert.True(overlap <= NodeTimeout + TimeSpan.FromSeconds(1), $"two Ready copies served together for {overlap.TotalSeconds:0.00} s");

        // The link comes back: the node rejoins, takes its goal state, and starts no second copy.
        cluster.Links[node].Restore();
        await Poll.UntilAsync(() => cluster.Api.ListNodesAsync(), n => n.All(x => x.Condition == "Ready"), TimeSpan.FromSeconds(30), "the node Ready again");
        await Poll.UntilAsync(() => !cluster.Agents[node]!.Fenced, TimeSpan.FromSeconds(30), "the agent to hear from the controller again");
        var after = await cluster.WaitUntilReadyAsync("hello", 2, TimeSpan.FromSeconds(60));
        Assert.Single(after.Instances, i => i.Role == "web");
        Assert.Equal(2, cluster.InstanceProcesses().Count);
    }

    [Fact]
    public async Task AnAgentWhoseFirstControllerHangsOnConnect_MovesToTheNextWithinItsSilenceLimit()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, nodeTimeout: TimeSpan.FromSeconds(30), containers: false);
        var sessions = cluster.Controller.Services.GetRequiredService<Heddle.Controller.Agents.AgentSessions>();
        await Poll.UntilAsync(() => sessions.IsConnected("n1"), TimeSpan.FromSeconds(30), "the agent's stream to the controller");
        await cluster.StopAgentAsync(0, stopInstances: true);
        await Poll.UntilAsync(() => !sessions.IsConnected("n1"), TimeSpan.FromSeconds(30), "the stopped agent's stream to end");

        // Its first controller is now a host gone silent: connections are accepted and nothing comes back, so the TLS
        // handshake of the first write never ends. The agent must give up on it as on a silent stream (5 s) and take the
        // next, not wait until it fences itself (30 s here) or TCP gives up.
        await using var silent = new LinkCutter(cluster.Controller.AgentUrl);
        await silent.CutAsync();
        var options = cluster.AgentOptions(0) with { ControllerAgentUrl = silent.Url, OtherControllerUrls = [cluster.Controller.AgentUrl] };
        var clock = Stopwatch.StartNew();
        await using var agent = await Heddle.Agent.AgentHost.StartAsync(options, cluster.AgentLogs.For("n1"));
        await Poll.UntilAsync(() => sessions.IsConnected("n1"), TimeSpan.FromSeconds(15), "the agent to reach the second controller after the first hung");
        output.WriteLine($"connected through the second controller {clock.Elapsed.TotalSeconds:0.0} s after the agent started");
    }

    [Fact]
    public async Task AnAgentWhoseLinkGoesSilent_ItsStreamIsClosedByTheController_WithoutWaitingForTcp()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, nodeTimeout: TimeSpan.FromSeconds(30), containers: false, cuttable: true);
        var sessions = cluster.Controller.Services.GetRequiredService<Heddle.Controller.Agents.AgentSessions>();
        // The cluster is up once the node has joined; its stream may still be opening (CI saw it not yet connected).
        await Poll.UntilAsync(() => sessions.IsConnected("n1"), TimeSpan.FromSeconds(30), "the agent's stream to the controller");

        // Nothing passes and nothing ends: only the controller's own pings can tell it the agent is gone.
        cluster.Links[0].Silence();
        var silent = Stopwatch.StartNew();
        await Poll.UntilAsync(() => !sessions.IsConnected("n1"), TimeSpan.FromSeconds(30), "the controller to close the silent agent's stream"); // pinged after 10 s, closed 10 s later; TCP would take minutes
        output.WriteLine($"the controller closed the silent stream after {silent.Elapsed.TotalSeconds:0.0} s");

        cluster.Links[0].Restore();
        await Poll.UntilAsync(() => sessions.IsConnected("n1"), TimeSpan.FromSeconds(30), "the agent to connect again once the link is back");
    }
}
