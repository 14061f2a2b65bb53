using System.Net;
using Heddle.Contracts.Api;
using Heddle.Controller.LoadBalancing;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>
/// What balancers could not open, as their heartbeats report it: a VIP that every balancer finds bound by something else
/// moves (and is not handed out again), up to three times; an address that is not on a balancer's host is that
/// balancer's problem and never moves a VIP; a balancer's reports go with it.
/// </summary>
[Collection(nameof(ClusterCollection))]
public sealed class VipConflictTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private const string Configuration = "service: hello\nroles:\n  web:    { instances: 1, settings: { Greeting: \"hi\" } }\n  worker: { instances: 1, settings: { IntervalSeconds: \"5\" } }\n";

    private static BalancerHeartbeat Heartbeat(string name, string address, params ListenerProblem[] problems) =>
        new(name, $"{name}-1", address, BalancerModes.None, null, true, "routed by the operator", [], 1, problems);

    private static ListenerProblem InUse(string vip) => new("hello", vip, 8080, "Address already in use", ListenerProblemKinds.InUse);

    private static ListenerProblem NotLocal(string vip) => new("hello", vip, 8080, "Cannot assign requested address", ListenerProblemKinds.NotLocal);

    [Fact]
    public async Task AVipTheOnlyBalancerFindsSquatted_MovesTheService_AndIsNotHandedOutAgain_UpToThreeMoves()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        var before = await cluster.DeploySampleAsync(Configuration);
        var squatted = new List<string> { before.Vip! };

        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1", InUse(before.Vip!)));

        var moved = await cluster.Api.GetServiceAsync("hello");
        Assert.NotNull(moved.Vip);
        Assert.NotEqual(before.Vip, moved.Vip);
        var events = await cluster.Api.ListEventsAsync();
        var move = Assert.Single(events, e => e.Kind == nameof(EventKind.VipMoved));
        Assert.Equal($"hello moved from VIP {before.Vip} to {moved.Vip}: the load balancer cannot listen on {before.Vip}:8080 (Address already in use); something else bound it first, and that address is no longer handed out", move.Message);
        await Poll.UntilAsync(() => cluster.Api.GetDnsRecordsAsync(), d => d.Services.Single(s => s.Name == "hello").Vips.SequenceEqual([moved.Vip!]), Deadline, "DNS to answer the new VIP");
        await Poll.UntilAsync(() => cluster.Api.GetLoadBalancerConfigAsync(), c => c.Listeners.All(l => l.Vip == moved.Vip), Deadline, "the balancer's listeners on the new VIP");

        // The balancer opened the new VIP: nothing is wrong any more.
        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1"));
        Assert.Null((await cluster.Api.GetServiceAsync("hello")).VipProblem);

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
            await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1", InUse(current)));
            current = (await cluster.Api.GetServiceAsync("hello")).Vip!;
            Assert.DoesNotContain(current, squatted);
        }

        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1", InUse(current)));
        var stuck = await cluster.Api.GetServiceAsync("hello");
        Assert.Equal(current, stuck.Vip);
        Assert.True(stuck.VipUnserved);
        Assert.Equal($"no load balancer serves {current}: lb1 cannot listen on {current}:8080 (Address already in use): something else on lb1's host listens on port 8080", stuck.VipProblem);
        events = await cluster.Api.ListEventsAsync();
        Assert.Equal(VipConflicts.MaxMoves, events.Count(e => e.Kind == nameof(EventKind.VipMoved)));
        Assert.Contains(events, e => e.Kind == nameof(EventKind.VipUnusable) && e.Message.Contains($"not moving hello again: it moved {VipConflicts.MaxMoves} times in 10 min"));

        // A report older than a move (its VIP is no longer the service's) changes nothing.
        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1", InUse(squatted[0])));
        Assert.Equal(current, (await cluster.Api.GetServiceAsync("hello")).Vip);
    }

    [Fact]
    public async Task OneOfTwoBalancersFindsTheVipSquatted_NothingMoves_StatusSaysWhichServes_UntilBothDo()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        var before = await cluster.DeploySampleAsync(Configuration);
        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb2", "127.0.0.2"));

        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1", InUse(before.Vip!)));

        var status = await cluster.Api.GetServiceAsync("hello");
        Assert.Equal(before.Vip, status.Vip);
        Assert.False(status.VipUnserved);
        Assert.Equal($"served by 1 of 2 load balancers; lb1 cannot listen on {before.Vip}:8080 (Address already in use): something else on lb1's host listens on port 8080", status.VipProblem);
        Assert.DoesNotContain(await cluster.Api.ListEventsAsync(), e => e.Kind == nameof(EventKind.VipMoved));

        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb2", "127.0.0.2", InUse(before.Vip!)));

        var moved = await cluster.Api.GetServiceAsync("hello");
        Assert.NotEqual(before.Vip, moved.Vip);
        Assert.Contains(await cluster.Api.ListEventsAsync(), e => e.Kind == nameof(EventKind.VipMoved) && e.Message.Contains("all 2 load balancers cannot listen"));
    }

    [Fact]
    public async Task AnAddressNotOnTheBalancersHost_NeverMovesTheVip_AndSaysWhatToConfigure()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        var before = await cluster.DeploySampleAsync(Configuration);

        for (var i = 0; i < 5; i++)
        {
            await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1", NotLocal(before.Vip!)));
        }

        var status = await cluster.Api.GetServiceAsync("hello");
        Assert.Equal(before.Vip, status.Vip);
        Assert.True(status.VipUnserved);
        Assert.Contains("the VIP is not an address of lb1's host; run it with --announce arp or bgp, or route the VIP pool to it", status.VipProblem);
        Assert.DoesNotContain(await cluster.Api.ListEventsAsync(), e => e.Kind is nameof(EventKind.VipMoved) or nameof(EventKind.VipUnusable));
        var listed = Assert.Single(await cluster.Api.ListBalancersAsync(), b => b.Name == "lb1");
        Assert.Equal("Up", listed.State);
        Assert.Equal(ListenerProblemKinds.NotLocal, Assert.Single(listed.Problems).Kind);
    }

    [Fact]
    public async Task ABalancerThatStops_TakesItsReportsWithIt()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        var before = await cluster.DeploySampleAsync(Configuration);
        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1", NotLocal(before.Vip!)));
        Assert.NotNull((await cluster.Api.GetServiceAsync("hello")).VipProblem);

        await cluster.Api.RemoveBalancerAsync("lb1");

        Assert.Null((await cluster.Api.GetServiceAsync("hello")).VipProblem);
        Assert.DoesNotContain(await cluster.Api.ListBalancersAsync(), b => b.Name == "lb1");
        Assert.Contains(await cluster.Api.ListEventsAsync(), e => e.Kind == nameof(EventKind.BalancerLeft) && e.Subject == "lb1");
    }

    [Fact]
    public async Task TheOnlyBalancerKilled_IsNoticedGone_AndTheStatusSaysTheVipAnswersNowhere()
    {
        var timing = BalancerTiming.Default with { Gone = TimeSpan.FromSeconds(1) };
        await using var cluster = await TestCluster.StartAsync(nodes: 1, configure: o => o with { BalancerTiming = timing });
        var before = await cluster.DeploySampleAsync(Configuration);
        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1"));
        Assert.Null((await cluster.Api.GetServiceAsync("hello")).VipProblem);

        // No heartbeat any more, and no leaving: killed.
        var gone = await Poll.UntilAsync(() => cluster.Api.ListEventsAsync(), e => e.Any(x => x.Kind == nameof(EventKind.BalancerGone)), Deadline, "an event saying lb1 is gone");
        Assert.StartsWith("load balancer lb1 at 127.0.0.1 not heard for ", gone.Single(e => e.Kind == nameof(EventKind.BalancerGone)).Message);
        var status = await cluster.Api.GetServiceAsync("hello");
        Assert.True(status.VipUnserved);
        Assert.StartsWith("no load balancer is up: lb1 last heard ", status.VipProblem);
        Assert.Equal("Gone", Assert.Single(await cluster.Api.ListBalancersAsync()).State);

        // It comes back (restarted): up again, said once.
        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1") with { Instance = "lb1-2" });
        Assert.Null((await cluster.Api.GetServiceAsync("hello")).VipProblem);
        Assert.Single(await cluster.Api.ListEventsAsync(), e => e.Kind == nameof(EventKind.BalancerGone));
        Assert.Equal(before.Vip, (await cluster.Api.GetServiceAsync("hello")).Vip);
    }

    [Fact]
    public async Task AMalformedHeartbeat_OrOneUnderAnotherBalancersName_IsRefusedWithA400_AndChangesNothing()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        var before = await cluster.DeploySampleAsync(Configuration);

        var e = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.HeartbeatBalancerAsync(Heartbeat("", "not an address", InUse(before.Vip!))));
        Assert.Equal(HttpStatusCode.BadRequest, e.Status);
        Assert.Contains("name '': 1 to 63 letters", e.Message);
        Assert.Contains("address 'not an address': not an IP address", e.Message);

        await cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.1"));
        var twin = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.HeartbeatBalancerAsync(Heartbeat("lb1", "127.0.0.9", InUse(before.Vip!)) with { Instance = "other" }));
        Assert.Equal(HttpStatusCode.BadRequest, twin.Status);
        Assert.Contains("another load balancer named 'lb1' reports from 127.0.0.1 (this one is at 127.0.0.9); give each its own --name", twin.Message);
        Assert.Equal(before.Vip, (await cluster.Api.GetServiceAsync("hello")).Vip);
        Assert.Equal("127.0.0.1", Assert.Single(await cluster.Api.ListBalancersAsync(), b => b.Name == "lb1").Address);
    }
}
