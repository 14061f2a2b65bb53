using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Trust;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Hostile;

/// <summary>
/// An enrolled node whose agent is hostile floods its stream with reports of instances it was never given. What it says
/// is taken within a bound, its heartbeats are still read (it is not judged Down), the controller keeps serving, and
/// nothing it named appears anywhere.
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class HostileAgentStreamTests
{
    [Fact]
    public async Task AnAgentFloodingItsStreamWithReports_IsStillHeard_AndNothingItNamedIsRecorded()
    {
        var timeout = TimeSpan.FromSeconds(3);
        await using var cluster = await TestCluster.StartAsync(nodes: 2, nodeTimeout: timeout, containers: false);
        await cluster.DeploySampleAsync();
        var before = await cluster.WaitUntilReadyAsync("hello", 4, TimeSpan.FromSeconds(60));
        var certificate = cluster.Agents[1]!.Identity.Certificate;
        await cluster.StopAgentAsync(1, stopInstances: true);

        using var channel = GrpcChannel.ForAddress(cluster.Controller.AgentUrl, new GrpcChannelOptions { HttpHandler = ClusterTrust.Handler(cluster.Controller.CaCertificate, () => certificate) });
        using var ended = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var call = new AgentService.AgentServiceClient(channel).Connect(cancellationToken: ended.Token);
        await call.RequestStream.WriteAsync(new AgentMessage { Hello = new Hello { Node = new NodeInfo { Name = "n2", Address = cluster.NodeAddress(1), MemoryMib = 1024 } } });
        var heard = 0;
        var reader = Task.Run(async () =>
        {
            while (await call.ResponseStream.MoveNext(ended.Token))
            {
                Interlocked.Increment(ref heard);
            }
        });

        // Twice the node timeout of reports naming instances by the ten thousand (of services that exist and do not),
        // a heartbeat every 250 ms among them.
        var flood = Stopwatch.StartNew();
        var sent = 0;
        var lastBeat = TimeSpan.Zero;
        while (flood.Elapsed < timeout * 2 || sent < 50_000)
        {
            var service = sent % 2 == 0 ? "hello" : "nosuch";
            await call.RequestStream.WriteAsync(new AgentMessage { Report = new InstanceReport { InstanceId = $"{service}/web/{1000 + sent}", State = "Ready", Generation = 1, Pid = 1 } });
            sent++;
            if (flood.Elapsed - lastBeat > TimeSpan.FromMilliseconds(250))
            {
                lastBeat = flood.Elapsed;
                await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new Heartbeat { Sequence = sent } });
            }
        }

        var heardAfterFlood = Volatile.Read(ref heard);
        await Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref heard)), h => h > heardAfterFlood, TimeSpan.FromSeconds(10), "a keepalive on the flooding node's stream after the flood");
        var nodes = await cluster.Api.ListNodesAsync();
        Assert.Equal("Ready", nodes.Single(n => n.Name == "n2").Condition);
        var events = await cluster.Api.ListEventsAsync();
        Assert.DoesNotContain(events, e => e.Subject == "n2" && e.Kind == "NodeDown");
        Assert.DoesNotContain(events, e => Named(e.Subject));
        Assert.Equal(["hello"], (await cluster.Api.ListServicesAsync()).Select(s => s.Name));
        var after = await cluster.Api.GetServiceAsync("hello");
        Assert.Equal(before.Instances.Select(i => i.Id).Order(), after.Instances.Select(i => i.Id).Order());

        await ended.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => reader);
    }

    /// <summary>Whether a subject is one of the instances the flood named: of a service that does not exist, or beyond hello's.</summary>
    private static bool Named(string subject) =>
        subject.StartsWith("nosuch/", StringComparison.Ordinal)
        || (subject.StartsWith("hello/web/", StringComparison.Ordinal) && int.TryParse(subject["hello/web/".Length..], out var index) && index >= 1000);
}
