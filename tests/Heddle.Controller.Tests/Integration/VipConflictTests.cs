using System.Net;
using Heddle.Contracts.Api;
using Heddle.Controller.LoadBalancing;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>
/// A VIP the load balancer cannot open (something bound it first): the controller says so in the events, moves the
/// service to another VIP that DNS and the balancer follow, never hands the squatted address out again, and stops
/// moving a service that keeps failing everywhere, saying why in its status.
/// </summary>
[Collection(nameof(ClusterCollection))]
public sealed class VipConflictTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private const string Configuration = "service: hello\nroles:\n  web:    { instances: 1, settings: { Greeting: \"hi\" } }\n  worker: { instances: 1, settings: { IntervalSeconds: \"5\" } }\n";

    private static LoadBalancerReport Squatted(string service, string vip) =>
        new("test-lb/1", 1, [new ListenerProblem(service, vip, 8080, "Address already in use")]);

    [Fact]
    public async Task AVipTheBalancerCannotOpen_MovesTheService_AndIsNotHandedOutAgain_UpToThreeMoves()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        var before = await cluster.DeploySampleAsync(Configuration);
        var squatted = new List<string> { before.Vip! };

        await cluster.Api.ReportLoadBalancerAsync(Squatted("hello", before.Vip!));

        var moved = await cluster.Api.GetServiceAsync("hello");
        Assert.NotNull(moved.Vip);
        Assert.NotEqual(before.Vip, moved.Vip);
        Assert.Null(moved.VipProblem);
        var events = await cluster.Api.ListEventsAsync();
        var move = Assert.Single(events, e => e.Kind == EventKinds.VipMoved);
        Assert.Equal($"hello moved from VIP {before.Vip} to {moved.Vip}: the load balancer cannot listen on {before.Vip}:8080 (Address already in use); something else bound it first, and that address is no longer handed out", move.Message);
        var dns = await Poll.UntilAsync(() => cluster.Api.GetDnsRecordsAsync(), d => d.Services.Single(s => s.Name == "hello").Vips.SequenceEqual([moved.Vip!]), Deadline, "DNS to answer the new VIP");
        Assert.NotNull(dns);
        await Poll.UntilAsync(() => cluster.Api.GetLoadBalancerConfigAsync(), c => c.Listeners.All(l => l.Vip == moved.Vip), Deadline, "the balancer's listeners on the new VIP");

        // The staging slot, deployed now, is not given the squatted address (the lowest free one otherwise).
        var upload = await cluster.Api.UploadPackageAsync(SamplePackage.File);
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration, "hello.config.yaml", Slot: "staging"));
        var staging = await cluster.Api.GetServiceAsync("hello", "staging");
        Assert.DoesNotContain(staging.Vip, squatted);

        // Two more moves; the fourth squatted VIP in ten minutes is reported, and the service stays.
        var current = moved.Vip!;
        for (var i = 0; i < 2; i++)
        {
            squatted.Add(current);
            await cluster.Api.ReportLoadBalancerAsync(Squatted("hello", current));
            current = (await cluster.Api.GetServiceAsync("hello")).Vip!;
            Assert.DoesNotContain(current, squatted);
        }

        await cluster.Api.ReportLoadBalancerAsync(Squatted("hello", current));
        var stuck = await cluster.Api.GetServiceAsync("hello");
        Assert.Equal(current, stuck.Vip);
        Assert.Equal($"the load balancer cannot listen on {current}:8080 (Address already in use)", stuck.VipProblem);
        events = await cluster.Api.ListEventsAsync();
        Assert.Equal(VipConflicts.MaxMoves, events.Count(e => e.Kind == EventKinds.VipMoved));
        Assert.Contains(events, e => e.Kind == EventKinds.VipUnusable && e.Message.Contains($"not moving hello again: it moved {VipConflicts.MaxMoves} times in 10 min"));

        // The balancer's next report says all is open: the problem is gone from the status.
        await cluster.Api.ReportLoadBalancerAsync(new LoadBalancerReport("test-lb/1", 2, []));
        Assert.Null((await cluster.Api.GetServiceAsync("hello")).VipProblem);

        // A report older than a move (its VIP is no longer the service's) changes nothing.
        await cluster.Api.ReportLoadBalancerAsync(Squatted("hello", squatted[0]));
        Assert.Equal(current, (await cluster.Api.GetServiceAsync("hello")).Vip);
    }

    [Fact]
    public async Task AMalformedReport_IsRefusedWithA400_AndChangesNothing()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        var before = await cluster.DeploySampleAsync(Configuration);

        var e = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.ReportLoadBalancerAsync(new LoadBalancerReport("", 1, [new ListenerProblem("hello", before.Vip!, 8080, "x")])));

        Assert.Equal(HttpStatusCode.BadRequest, e.Status);
        Assert.Contains("a report names its reporter", e.Message);
        Assert.Equal(before.Vip, (await cluster.Api.GetServiceAsync("hello")).Vip);
    }
}
