using System.Net;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.Announcing;
using Heddle.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.LoadBalancer.Tests.Announcing;

/// <summary>
/// A balancer's side of VIP ownership, on a fake clock: it answers for exactly the VIPs its lease names, stops before
/// the lease ends by its own clock when no renewal comes, and on a graceful stop withdraws before it leaves.
/// </summary>
public sealed class BalancerAgentTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private const string Vip = "127.0.0.200"; // bindable: the listeners open, so the VIP can be announced

    private static LoadBalancerConfig Config(params string[] vips) => new()
    {
        Version = 1,
        Listeners = [.. vips.Select(v => new VipListener("hello", v, 0, "tcp", []))],
    };

    [Fact]
    public async Task AnArpOwner_AnswersForItsLeasedVips_AndStopsBeforeItsLeaseEnds_WhenNoRenewalComes()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var control = new FakeControl { Owned = [Vip] };
        var announcer = new RecordingAnnouncer();
        await using var agent = new BalancerAgent(new LoadBalancerHost(new LoadBalancerOptions()), new BalancerIdentity("lb1", "127.0.0.1", "arp", "eth0"), control, announcer, null, time, _ => { });
        await agent.ApplyAsync(Config("127.0.0.1"));
        agent.Start();
        await Poll.UntilAsync(() => control.Heartbeats > 0, Deadline, "the first heartbeat");
        await Poll.UntilAsync(() => announcer.Current.Contains(IPAddress.Parse(Vip)) is false, Deadline, "nothing announced: the VIP is not served by this configuration");

        await agent.ApplyAsync(Config(Vip));
        await Poll.UntilAsync(() => announcer.Current.SetEquals([IPAddress.Parse(Vip)]), Deadline, "the owned VIP announced");

        // The controllers stop answering: 1.5 s lease, 0.25 s margin, counted from the last heartbeat's sending.
        control.Failing = true;
        var beats = control.Heartbeats;
        time.Advance(TimeSpan.FromMilliseconds(400));
        await Poll.UntilAsync(() => control.Heartbeats > beats, Deadline, "a heartbeat that goes unanswered");
        time.Advance(TimeSpan.FromMilliseconds(800)); // 1.2 s since the last answered one was sent
        await Task.Yield();
        Assert.Contains(IPAddress.Parse(Vip), announcer.Current);
        time.Advance(TimeSpan.FromMilliseconds(100)); // 1.3 s: past lease - margin
        await Poll.UntilAsync(() => announcer.Current.Count == 0, Deadline, "the VIP withdrawn before the lease ends");

        // Answered again, with the VIP still its own: it answers again.
        control.Failing = false;
        time.Advance(TimeSpan.FromMilliseconds(400));
        await Poll.UntilAsync(() => announcer.Current.Count == 1, Deadline, "the VIP announced again after a renewal");

        // The lease names no VIP any more (another took it after a partition): withdrawn at once.
        control.Owned = [];
        time.Advance(TimeSpan.FromMilliseconds(400));
        await Poll.UntilAsync(() => announcer.Current.Count == 0, Deadline, "the VIP withdrawn when the lease no longer names it");
    }

    [Fact]
    public async Task AGracefulStop_WithdrawsEveryAnnouncement_BeforeItLeaves()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var announcer = new RecordingAnnouncer();
        var control = new FakeControl { Owned = [Vip] };
        control.Leaving = () => control.AnnouncedWhenLeaving = announcer.Current.Count;
        await using var agent = new BalancerAgent(new LoadBalancerHost(new LoadBalancerOptions()), new BalancerIdentity("lb1", "127.0.0.1", "bgp", null), control, announcer, null, time, _ => { });
        await agent.ApplyAsync(Config(Vip));
        agent.Start();
        await Poll.UntilAsync(() => announcer.Current.Count == 1, Deadline, "the VIP announced over BGP");

        await agent.StopAsync(TimeSpan.Zero);

        Assert.Equal(0, control.AnnouncedWhenLeaving);
        Assert.Equal(["lb1"], control.Left);
    }

    [Fact]
    public async Task AStuckDataPlane_WithdrawsEveryVip_AndReportsItselfUnhealthy_UntilItRecovers()
    {
        var control = new FakeControl();
        var announcer = new RecordingAnnouncer();
        var host = new LoadBalancerHost(new LoadBalancerOptions());
        await using var agent = new BalancerAgent(host, new BalancerIdentity("lb1", "127.0.0.1", "bgp", null), control, announcer, null, TimeProvider.System, _ => { });
        await agent.ApplyAsync(Config(Vip));
        agent.Start();
        await Poll.UntilAsync(() => announcer.Current.Count == 1, Deadline, "the VIP announced over BGP");

        using var stuck = new ManualResetEventSlim();
        host.Loops[0].Post(() => stuck.Wait(TimeSpan.FromSeconds(30))); // the L4 loop stops turning
        try
        {
            await Poll.UntilAsync(() => announcer.Current.Count == 0, Deadline, "the VIP withdrawn while the data plane is stuck");
            await Poll.UntilAsync(() => control.Last is { Healthy: false }, Deadline, "a heartbeat that says the balancer is unhealthy");
            Assert.Contains("data plane unhealthy: L4 event loop 0 did not run a check within 1 s", control.Last!.Detail);
        }
        finally
        {
            stuck.Set();
        }

        await Poll.UntilAsync(() => announcer.Current.Count == 1, Deadline, "the VIP announced again once the loop turns");
        await Poll.UntilAsync(() => control.Last is { Healthy: true }, Deadline, "a heartbeat that says it is healthy again");
    }

    private sealed class FakeControl : IBalancerControl
    {
        public volatile bool Failing;
        private int _heartbeats;

        public IReadOnlyList<string> Owned { get; set; } = [];

        public int Heartbeats => Volatile.Read(ref _heartbeats);

        public List<string> Left { get; } = [];

        public Action? Leaving { get; set; }

        public int? AnnouncedWhenLeaving { get; set; }

        public BalancerHeartbeat? Last { get; private set; }

        public Task<BalancerLease> HeartbeatAsync(BalancerHeartbeat heartbeat, CancellationToken cancellationToken)
        {
            Last = heartbeat;
            Interlocked.Increment(ref _heartbeats);
            return Failing ? Task.FromException<BalancerLease>(new HttpRequestException("connection timed out")) : Task.FromResult(new BalancerLease(Owned, 1500, 400));
        }

        public Task LeaveAsync(string name, CancellationToken cancellationToken)
        {
            Leaving?.Invoke();
            Left.Add(name);
            return Task.CompletedTask;
        }
    }

    private sealed class RecordingAnnouncer : IVipAnnouncer
    {
        private volatile HashSet<IPAddress> _current = [];

        public HashSet<IPAddress> Current => _current;

        public string Mode => "test";

        public AnnouncerStatus Status => new(Mode, true, "test", [.. _current.Select(v => v.ToString())]);

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task AnnounceAsync(IReadOnlySet<IPAddress> vips, CancellationToken cancellationToken)
        {
            _current = [.. vips];
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
