using Heddle.Controller.Agents;
using Heddle.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Controller.Tests.Integration;

/// <summary>
/// Agents' heartbeats go as UDP datagrams once the controller says it hears them, and nothing goes on their streams
/// but what must; when the datagrams stop arriving (UDP dropped on the way: here, the controller's UDP port closed),
/// the agents heart-beat on their streams again before the node timeout, and no node is judged Down.
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

        await Poll.UntilAsync(() => cluster.Agents.All(a => a!.Connection.HeartbeatsByDatagram), Deadline, "every agent's heartbeats carried by datagrams");
        var carried = await ScrapeAsync(cluster, http);
        var later = await Poll.UntilAsync(() => ScrapeAsync(cluster, http), now => now.Zip(carried).All(p => p.First.Datagram >= p.Second.Datagram + 3),
            Deadline, "three more heartbeat datagrams from each agent");
        Assert.Equal(carried.Select(c => c.Stream), later.Select(c => c.Stream)); // none on the streams meanwhile

        var events = (await cluster.Api.ListEventsAsync()).Select(e => e.Id).DefaultIfEmpty(0).Max();
        cluster.Controller.Services.GetRequiredService<HeartbeatDatagrams>().Dispose(); // the controller's UDP port is closed: datagrams go nowhere
        var lost = await ScrapeAsync(cluster, http);

        // Heart-beating on the stream again, for longer than a node timeout.
        await Poll.UntilAsync(() => ScrapeAsync(cluster, http), now => now.Zip(lost).All(p => p.First.Stream >= p.Second.Stream + timeout.TotalSeconds + 2),
            Deadline, "each agent heart-beating on its stream for longer than the node timeout");
        Assert.All(cluster.Agents, a => Assert.False(a!.Connection.HeartbeatsByDatagram));
        Assert.All(await cluster.Api.ListNodesAsync(), n => Assert.Equal("Ready", n.Condition));
        Assert.DoesNotContain(await cluster.Api.ListEventsAsync(events), e => e.Kind == "NodeDown");
        Assert.Contains(cluster.AgentLogs.Lines, l => l.Contains("has not heard this node's heartbeat datagrams", StringComparison.Ordinal));
    }

    private static async Task<(double Stream, double Datagram)[]> ScrapeAsync(TestCluster cluster, HttpClient http) =>
        [.. (await Task.WhenAll(cluster.Agents.Select(a => MetricsScrape.GetAsync(http, a!.MetricsUrl!))))
            .Select(s => (s.Sum("heddle_agent_heartbeats_total", ("via", "stream")), s.Sum("heddle_agent_heartbeats_total", ("via", "datagram"))))];
}
