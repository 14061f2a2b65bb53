using Heddle.Controller.Agents;
using Heddle.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Controller.Tests.Integration;

/// <summary>
/// Agents' heartbeats go as UDP datagrams once the controller answers them, and the answers are the agents' keepalives:
/// nothing goes on their streams either way but goal states. When the datagrams stop arriving (UDP dropped on the way:
/// here, the controller's UDP port closed), the agents heart-beat on their streams again and the controller sends
/// keepalives there, before the node timeout, and no node is judged Down or fences itself.
/// </summary>
[Collection(nameof(ClusterCollection))]
public sealed class HeartbeatDatagramTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task HeartbeatsGoAsDatagrams_AndBackOnTheStream_WhenUdpIsLost_WithNoNodeDown()
    {
        var timeout = TimeSpan.FromSeconds(8);
        await using var cluster = await TestCluster.StartAsync(nodes: 2, nodeTimeout: timeout, containers: false, agentMetrics: true);
        using var http = new HttpClient();
        using var controllerHttp = cluster.Controller.Http();
        var metricsToken = (await cluster.Api.CreateTokenAsync(new Contracts.Api.TokenCreateRequest(Metrics: true, Description: "prometheus"))).Token;
        var metrics = new Uri(cluster.Controller.ApiUrl, "/metrics");
        async Task<double> KeepalivesAsync() => (await MetricsScrape.GetAsync(controllerHttp, metrics, metricsToken)).Sum("heddle_controller_agent_messages_total", ("kind", "keepalive"));

        await Poll.UntilAsync(() => cluster.Agents.All(a => a!.Connection.HeartbeatsByDatagram), Deadline, "every agent's heartbeats carried by datagrams");
        var perSecond = 1 / cluster.Agents[0]!.Options.HeartbeatInterval.TotalSeconds;
        var first = await ScrapeAsync(cluster, http);
        var carried = await Poll.UntilAsync(() => ScrapeAsync(cluster, http), now => now.Zip(first).All(p => p.First.Datagram >= p.Second.Datagram + (4 * perSecond)),
            Deadline, "four seconds more of heartbeat datagrams from each agent"); // past the 3 s in which the controller answers the agent's last heartbeat on its stream with keepalives
        var keepalives = await KeepalivesAsync();
        var later = await Poll.UntilAsync(() => ScrapeAsync(cluster, http), now => now.Zip(carried).All(p => p.First.Datagram >= p.Second.Datagram + (3 * perSecond)),
            Deadline, "three seconds more of heartbeat datagrams from each agent");
        Assert.Equal(carried.Select(c => c.Stream), later.Select(c => c.Stream)); // no heartbeat on the streams meanwhile
        Assert.Equal(keepalives, await KeepalivesAsync()); // and no keepalive: the answers are

        var events = (await cluster.Api.ListEventsAsync()).Select(e => e.Id).DefaultIfEmpty(0).Max();
        cluster.Controller.Services.GetRequiredService<HeartbeatDatagrams>().Dispose(); // the controller's UDP port is closed: datagrams go nowhere
        var lost = await ScrapeAsync(cluster, http);

        // Heart-beating on the stream again, for longer than a node timeout.
        await Poll.UntilAsync(() => ScrapeAsync(cluster, http), now => now.Zip(lost).All(p => p.First.Stream >= p.Second.Stream + ((timeout.TotalSeconds + 2) * perSecond)),
            Deadline, "each agent heart-beating on its stream for longer than the node timeout");
        Assert.All(cluster.Agents, a => Assert.False(a!.Connection.HeartbeatsByDatagram));
        Assert.True(await KeepalivesAsync() >= keepalives + (2 * timeout.TotalSeconds), "keepalives on the streams again");
        Assert.All(cluster.Agents, a => Assert.False(a!.Fenced));
        Assert.All(await cluster.Api.ListNodesAsync(), n => Assert.Equal("Ready", n.Condition));
        Assert.DoesNotContain(await cluster.Api.ListEventsAsync(events), e => e.Kind == "NodeDown");
        Assert.Contains(cluster.AgentLogs.Lines, l => l.Contains("heartbeat datagrams to UDP", StringComparison.Ordinal) && l.Contains("the controller does not hear them", StringComparison.Ordinal));
    }

    private static async Task<(double Stream, double Datagram)[]> ScrapeAsync(TestCluster cluster, HttpClient http) =>
        [.. (await Task.WhenAll(cluster.Agents.Select(a => MetricsScrape.GetAsync(http, a!.MetricsUrl!))))
            .Select(s => (s.Sum("heddle_agent_heartbeats_total", ("via", "stream")), s.Sum("heddle_agent_heartbeats_total", ("via", "datagram"))))];
}
