using System.Diagnostics;
using System.Net;
using Heddle.Testing;
using Heddle.Testing.Hosts;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests.Hosts;

/// <summary>
/// BGP mode (<see cref="BalancerBed"/>): the client host (cl) is also the router — BIRD 2 with ECMP (`merge paths on`,
/// fib_multipath_hash_policy 1) — and both balancers run `--announce bgp` towards it. Every balancer announces the VIP and
/// the router spreads flows over them; a balancer killed has its route withdrawn within the hold time (3 s) and no request
/// fails after that; a balancer stopped withdraws first, and no request fails at all.
/// </summary>
[Collection(BedCollection.Name)]
[Trait("Category", BedCollection.Category)]
public sealed class BgpEcmpTests(BalancerBed bed, ITestOutputHelper output) : IClassFixture<BalancerBed>, IAsyncLifetime
{
    private const uint BalancerAsn = 65001;
    private static readonly TimeSpan HoldTime = TimeSpan.FromSeconds(3);
    private readonly Dictionary<string, HostProcess> _balancers = [];
    private BirdRouter? _router;

    private BirdRouter Router => _router!;

    public async Task InitializeAsync()
    {
        _router = await BirdRouter.StartAsync(bed.Bed["cl"], [bed.Bed["lb1"], bed.Bed["lb2"]], BalancerAsn);
        foreach (var name in new[] { "lb1", "lb2" })
        {
            _balancers[name] = bed.StartBalancer(name, "--announce", "bgp", "--bgp-peer", bed.Bed["cl"].Address.ToString(),
                "--bgp-asn", BalancerAsn.ToString(), "--bgp-peer-asn", BirdRouter.Asn.ToString(), "--stop-grace", "2s");
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var balancer in _balancers.Values.Where(b => !b.HasExited))
        {
            await balancer.StopAsync();
        }

        if (_router is not null)
        {
            await _router.DisposeAsync();
        }

        // A balancer the test killed could not remove its gobgpd's folder (a stopped one removes its own).
        foreach (var name in _balancers.Keys)
        {
            var folder = $"/run/heddle/lb-{name}";
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    [Fact]
    public async Task BothAnnounce_FlowsSpread_OneKilled_ItsRouteGoesWithinTheHoldTime_AndNoRequestFailsAfter()
    {
        var vip = await BothAnnounceAsync();

        // The router's own choice for 200 flows (source ports) to the VIP: both balancers get some.
        var chosen = new Dictionary<string, int>();
        for (var port = 40000; port < 40200; port++)
        {
            var route = await bed.Bed["cl"].RunAsync("/usr/sbin/ip", "route", "get", vip.ToString(), "ipproto", "tcp", "sport", port.ToString(), "dport", "8080");
            var via = route.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipWhile(w => w != "via").Skip(1).FirstOrDefault() ?? "(none)";
            chosen[via] = chosen.GetValueOrDefault(via) + 1;
        }

        output.WriteLine($"200 flows: {string.Join(", ", chosen.Select(c => $"{c.Value} via {c.Key}"))}");
        Assert.Equal(2, chosen.Count);
        Assert.All(chosen.Values, n => Assert.InRange(n, 40, 160));

        await using var loop = ClientLoop.Start(bed, vip);
        await loop.WaitForSuccessesAsync(5);
        var clock = Stopwatch.StartNew();
        _balancers["lb2"].Kill();
        await Poll.UntilAsync(() => Router.NextHopsAsync(vip), hops => hops.SequenceEqual([bed.Bed["lb1"].Address]), TimeSpan.FromSeconds(30), $"lb2's route to {vip} withdrawn\n{bed.Describe()}");
        var withdrawn = clock.Elapsed;
        var after = DateTimeOffset.UtcNow;
        output.WriteLine($"lb2 killed: its route withdrawn after {withdrawn.TotalSeconds:0.00} s; {loop.FailuresBefore(after)} requests failed before that");
        Assert.True(withdrawn <= HoldTime, $"lb2's route withdrawn {withdrawn.TotalSeconds:0.00} s after it was killed (hold time {HoldTime.TotalSeconds} s)");

        await loop.WaitForSuccessesAsync(30, after);
        Assert.True(loop.FailuresAfter(after) == 0, $"{loop.FailuresAfter(after)} requests failed after lb2's route was withdrawn: {loop.Describe(after)}");
    }

    [Fact]
    public async Task OneStopped_WithdrawsFirst_AndNoRequestFails()
    {
        var vip = await BothAnnounceAsync();
        await using var loop = ClientLoop.Start(bed, vip);
        await loop.WaitForSuccessesAsync(5);
        var from = DateTimeOffset.UtcNow;

        var stopping = _balancers["lb1"].StopAsync();
        var clock = Stopwatch.StartNew();
        await Poll.UntilAsync(() => Router.NextHopsAsync(vip), hops => hops.SequenceEqual([bed.Bed["lb2"].Address]), TimeSpan.FromSeconds(30), $"lb1's route to {vip} withdrawn\n{bed.Describe()}");
        output.WriteLine($"lb1 stopped: its route withdrawn after {clock.Elapsed.TotalSeconds:0.00} s");
        await stopping;
        await loop.WaitForSuccessesAsync(30, DateTimeOffset.UtcNow);

        Assert.True(loop.FailuresAfter(from) == 0, $"{loop.FailuresAfter(from)} requests failed while lb1 stopped: {loop.Describe(from)}");
    }

    private async Task<IPAddress> BothAnnounceAsync()
    {
        var vip = IPAddress.Parse(await bed.VipAsync());
        var both = new[] { bed.Bed["lb1"].Address, bed.Bed["lb2"].Address }.OrderBy(a => a.ToString(), StringComparer.Ordinal).ToList();
        await Poll.UntilAsync(() => Router.NextHopsAsync(vip), hops => hops.SequenceEqual(both), TimeSpan.FromSeconds(60), $"both balancers' routes to {vip} at the router\n{bed.Describe()}\n{Router.Output}");
        return vip;
    }

    /// <summary>
    /// GETs of the VIP from the client, one after another, each with the time it was sent and its outcome. A request is dated
    /// by when it was sent, not when it ended: one sent to lb2 just before its route went fails just after, and that is a
    /// request the router sent while lb2 was still a next hop.
    /// </summary>
    private sealed class ClientLoop : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly List<(DateTimeOffset Time, bool Ok)> _results = [];
        private Task _running = Task.CompletedTask;

        public static ClientLoop Start(BalancerBed bed, IPAddress vip)
        {
            var loop = new ClientLoop();
            loop._running = Task.Run(async () =>
            {
                while (!loop._stop.IsCancellationRequested)
                {
                    var sent = DateTimeOffset.UtcNow;
                    var ok = await bed.GetAsync("cl", vip.ToString(), TimeSpan.FromSeconds(2));
                    lock (loop._results)
                    {
                        loop._results.Add((sent, ok));
                    }
                }
            });
            return loop;
        }

        public int FailuresBefore(DateTimeOffset time) => Snapshot().Count(r => !r.Ok && r.Time < time);

        public int FailuresAfter(DateTimeOffset time) => Snapshot().Count(r => !r.Ok && r.Time >= time);

        public string Describe(DateTimeOffset from) => string.Join(", ", Snapshot().Where(r => r.Time >= from).Select(r => $"{r.Time:HH:mm:ss.fff} {(r.Ok ? "ok" : "FAILED")}"));

        public Task WaitForSuccessesAsync(int count, DateTimeOffset? since = null) =>
            Poll.UntilAsync(() => Snapshot().Count(r => r.Ok && r.Time >= (since ?? DateTimeOffset.MinValue)) >= count, TimeSpan.FromSeconds(60), $"{count} answered requests");

        private List<(DateTimeOffset Time, bool Ok)> Snapshot()
        {
            lock (_results)
            {
                return [.. _results];
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _running;
        }
    }
}
