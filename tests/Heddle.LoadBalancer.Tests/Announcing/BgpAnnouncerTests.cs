using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using Grpc.Core;
using Heddle.LoadBalancer.Announcing;
using Heddle.LoadBalancer.Announcing.Bgp;
using Heddle.LoadBalancer.Announcing.Bgp.Apipb;
using Heddle.Testing;
using Heddle.Testing.Hosts;
using Xunit.Abstractions;

namespace Heddle.LoadBalancer.Tests.Announcing;

/// <summary>
/// The BGP announcer against a real router: BIRD 2 on the bed's host "rt", a gobgpd per balancer in the balancer's own
/// network namespace (started through nsenter, its API on a unix socket in a temp folder, which the test process
/// reaches from the root namespace). What is checked is what an operator sees on the router: the kernel's route to a VIP.
/// </summary>
public sealed class BgpAnnouncerTests(ITestOutputHelper output)
{
    private const uint BalancerAsn = 65001;
    private static readonly IPAddress Vip = IPAddress.Parse("198.51.100.10");
    private static readonly TimeSpan SessionUp = TimeSpan.FromSeconds(40); // gobgpd's first connect waits 5–10 s
    private static readonly TimeSpan HoldTime = TimeSpan.FromSeconds(3);
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    [Fact]
    public async Task AnnounceAsync_TwoBalancers_RouterSpreadsOverBothAndDropsOneWhoseGobgpdIsKilled()
    {
        await using var bed = await TestBed.CreateAsync("rt", "lb1", "lb2");
        using var folder = new TempDirectory();
        var (rt, lb1, lb2) = (bed["rt"], bed["lb1"], bed["lb2"]);
        await using var bird = await BirdRouter.StartAsync(rt, [lb1, lb2], BalancerAsn);
        await using var one = Announcer(lb1, rt, folder);
        await using var two = Announcer(lb2, rt, folder);
        try
        {
            await Task.WhenAll(one.StartAsync(default), two.StartAsync(default));
            await Poll.UntilAsync(() => one.Status.Healthy && two.Status.Healthy, SessionUp, "both sessions to be Established");

            var clock = Stopwatch.StartNew();
            await Task.WhenAll(one.AnnounceAsync(new HashSet<IPAddress> { Vip }, default), two.AnnounceAsync(new HashSet<IPAddress> { Vip }, default));
            await Poll.UntilAsync(() => bird.NextHopsAsync(Vip), hops => hops.SequenceEqual([lb1.Address, lb2.Address]), TimeSpan.FromSeconds(10), $"a route to {Vip} via both balancers on rt", TimeSpan.FromMilliseconds(10));
            output.WriteLine($"announce → multipath route in rt's kernel: {clock.Elapsed.TotalMilliseconds:0} ms");
            await Poll.UntilAsync(() => Task.FromResult(one.Status), s => s.Detail.EndsWith("Established, 1 route", StringComparison.Ordinal), TimeSpan.FromSeconds(5), "lb1's status to count its route");
            Assert.Equal($"bgp: peer {rt.Address} AS {BirdRouter.Asn} Established, 1 route", one.Status.Detail);
            Assert.Equal([Vip.ToString()], one.Status.Announced);

            var killed = two.Daemon.Pid!.Value;
            clock.Restart();
            Kill(killed);
            await Poll.UntilAsync(() => bird.NextHopsAsync(Vip), hops => hops.SequenceEqual([lb1.Address]), HoldTime, "rt to drop the route via lb2 after its gobgpd was killed", TimeSpan.FromMilliseconds(10));
            output.WriteLine($"gobgpd on lb2 killed → its route gone from rt's kernel: {clock.Elapsed.TotalMilliseconds:0} ms");

            clock.Restart();
            await Poll.UntilAsync(() => bird.NextHopsAsync(Vip), hops => hops.SequenceEqual([lb1.Address, lb2.Address]), SessionUp, "lb2's gobgpd, started again, to announce the VIP again", TimeSpan.FromMilliseconds(100));
            output.WriteLine($"lb2 back in the multipath route {clock.Elapsed.TotalSeconds:0.0} s after the kill (restart backoff 1 s, then gobgpd's connect wait)");
            Assert.NotEqual(killed, two.Daemon.Pid);
            Assert.Equal(1, two.Daemon.Restarts);
        }
        catch
        {
            output.WriteLine($"bird's output:\n{bird.Output}");
            throw;
        }
    }

    [Fact]
    public async Task DisposeAsync_Announcing_WithdrawsTheRoutesBeforeTheSessionCloses()
    {
        await using var bed = await TestBed.CreateAsync("rt", "lb1", "lb2");
        using var folder = new TempDirectory();
        var (rt, lb1, lb2) = (bed["rt"], bed["lb1"], bed["lb2"]);
        await using var bird = await BirdRouter.StartAsync(rt, [lb1, lb2], BalancerAsn);
        var one = Announcer(lb1, rt, folder);
        await using var two = Announcer(lb2, rt, folder);
        try
        {
            await Task.WhenAll(one.StartAsync(default), two.StartAsync(default));
            await Task.WhenAll(one.AnnounceAsync(new HashSet<IPAddress> { Vip }, default), two.AnnounceAsync(new HashSet<IPAddress> { Vip }, default));
            await Poll.UntilAsync(() => bird.NextHopsAsync(Vip), hops => hops.SequenceEqual([lb1.Address, lb2.Address]), SessionUp, $"a route to {Vip} via both balancers on rt");

            var gobgpd = one.Daemon.Pid!.Value;
            var clock = Stopwatch.StartNew();
            await one.DisposeAsync();
            output.WriteLine($"lb1's DisposeAsync took {clock.Elapsed.TotalMilliseconds:0} ms");

            Assert.False(Directory.Exists($"/proc/{gobgpd}"), "lb1's gobgpd still runs after DisposeAsync");
            Assert.False(Directory.Exists(folder.Combine(lb1.Name)), "lb1's gobgpd folder (its API socket's) is left");
            Assert.Equal([lb2.Address], await bird.NextHopsAsync(Vip));
            Assert.NotEqual("Established", await bird.SessionAsync(lb1));

            // BIRD's own account, in the order it saw things: the route from lb1 went while the session was still up.
            var log = bird.Output.Split('\n');
            var withdrawn = Array.FindIndex(log, l => l.Contains("lb1.ipv4 > removed", StringComparison.Ordinal) && l.Contains(Vip.ToString(), StringComparison.Ordinal));
            var closed = Array.FindIndex(log, l => l.Contains("lb1: BGP session closed", StringComparison.Ordinal));
            Assert.True(withdrawn >= 0 && closed >= 0 && withdrawn < closed, $"expected lb1's withdrawal before its session closed in bird's log:\n{bird.Output}");
        }
        catch
        {
            output.WriteLine($"bird's output:\n{bird.Output}");
            throw;
        }
        finally
        {
            await one.DisposeAsync();
        }
    }

    [Fact]
    public async Task AnnounceAsync_BalancerGoesSilent_RouterDropsItsRouteWithinTheHoldTime()
    {
        await using var bed = await TestBed.CreateAsync("rt", "lb1", "lb2");
        using var folder = new TempDirectory();
        var (rt, lb1, lb2) = (bed["rt"], bed["lb1"], bed["lb2"]);
        await using var bird = await BirdRouter.StartAsync(rt, [lb1, lb2], BalancerAsn);
        await using var one = Announcer(lb1, rt, folder);
        await using var two = Announcer(lb2, rt, folder);
        await Task.WhenAll(one.StartAsync(default), two.StartAsync(default));
        await Task.WhenAll(one.AnnounceAsync(new HashSet<IPAddress> { Vip }, default), two.AnnounceAsync(new HashSet<IPAddress> { Vip }, default));
        await Poll.UntilAsync(() => bird.NextHopsAsync(Vip), hops => hops.SequenceEqual([lb1.Address, lb2.Address]), SessionUp, $"a route to {Vip} via both balancers on rt");

        // The silence starts inside DropAsync (one nft transaction), so time counted from its return is all silent. A
        // route kept for BIRD's default hold time (240 s) or gobgp's (90 s) would be far past this deadline.
        var dropping = Stopwatch.StartNew();
        await lb2.DropAsync();
        var clock = Stopwatch.StartNew();
        output.WriteLine($"lb2's drop took {dropping.ElapsedMilliseconds} ms to set up");
        var hops = await Poll.UntilAsync(() => bird.NextHopsAsync(Vip), hops => hops.SequenceEqual([lb1.Address]), HoldTime + TimeSpan.FromSeconds(4), "rt to drop the route via the silent lb2", TimeSpan.FromMilliseconds(10));
        output.WriteLine($"lb2 silent → its route gone from rt's kernel: {clock.Elapsed.TotalMilliseconds:0} ms (hold time {HoldTime.TotalSeconds:0} s)");
        await Poll.UntilAsync(() => !two.Status.Healthy, HoldTime + TimeSpan.FromSeconds(3), "lb2's status to say its session is down");
        output.WriteLine($"lb2's status: {two.Status.Detail}");
        Assert.Matches($@"^bgp: peer {rt.Address} AS {BirdRouter.Asn} (Idle|Connect|Active): no session, 1 route waiting$", two.Status.Detail);
    }

    [Fact]
    public async Task Daemon_GobgpdKilled_IsStartedAgainAndGivenItsPathsBack()
    {
        await using var bed = await TestBed.CreateAsync("lb");
        using var folder = new TempDirectory();
        var lb = bed["lb"];
        var nobody = IPAddress.Parse($"198.18.{bed.Subnet}.1"); // no router: the session never comes up, the paths are in gobgpd all the same
        await using var announcer = Announcer(lb, nobody, folder);
        await announcer.StartAsync(default);
        var vips = new HashSet<IPAddress> { Vip, IPAddress.Parse("198.51.100.11") };
        await announcer.AnnounceAsync(vips, default);
        Assert.Equal(vips.Select(v => $"{v}/32").Order(), await GlobalRibAsync(announcer));
        Assert.False(announcer.Status.Healthy);

        var killed = announcer.Daemon.Pid!.Value;
        Kill(killed);
        var rib = await Poll.UntilAsync(() => GlobalRibAsync(announcer), r => r.Count == 2, TimeSpan.FromSeconds(20), "the restarted gobgpd to hold both VIPs again");
        Assert.Equal(vips.Select(v => $"{v}/32").Order(), rib);
        Assert.NotEqual(killed, announcer.Daemon.Pid);
        Assert.Equal(1, announcer.Daemon.Restarts);

        await announcer.AnnounceAsync(new HashSet<IPAddress> { Vip }, default);
        Assert.Equal([$"{Vip}/32"], await GlobalRibAsync(announcer));
        Assert.Equal([Vip.ToString()], announcer.Status.Announced);
        output.WriteLine(announcer.Status.Detail);
    }

    [Fact]
    public async Task StartAsync_GobgpdMissing_SaysToInstallDebiansGobgpd()
    {
        using var folder = new TempDirectory();
        await using var announcer = new BgpAnnouncer(Options(IPAddress.Parse("198.18.0.10"), IPAddress.Parse("198.18.0.1"), folder.Combine("gobgpd.sock")) with { Gobgpd = folder.Combine("gobgpd") });
        var e = await Assert.ThrowsAsync<AnnouncerException>(() => announcer.StartAsync(default));
        Assert.Contains("install Debian's gobgpd", e.Message);
    }

    [Theory]
    [InlineData("0.0.0.0", 65000u, "is not a router's address")]
    [InlineData("224.0.0.5", 65000u, "is not a router's address")]
    [InlineData("2001:db8::1", 65000u, "is not a router's address")]
    [InlineData("198.18.0.1", 0u, "--bgp-peer-asn 0 is not a usable AS number")]
    [InlineData("198.18.0.1", 23456u, "--bgp-peer-asn 23456 is not a usable AS number")]
    public async Task StartAsync_BadPeer_SaysWhatToChange(string peer, uint peerAsn, string expected)
    {
        using var folder = new TempDirectory();
        await using var announcer = new BgpAnnouncer(Options(IPAddress.Parse("198.18.0.10"), IPAddress.Parse(peer), folder.Combine("gobgpd.sock")) with { PeerAsn = peerAsn });
        var e = await Assert.ThrowsAsync<AnnouncerException>(() => announcer.StartAsync(default));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public async Task AnnounceAsync_Ipv6VipWithoutIpv6NextHop_SaysSo()
    {
        using var folder = new TempDirectory();
        await using var announcer = new BgpAnnouncer(Options(IPAddress.Parse("198.18.0.10"), IPAddress.Parse("198.18.0.1"), folder.Combine("gobgpd.sock")));
        var e = await Assert.ThrowsAsync<AnnouncerException>(() => announcer.AnnounceAsync(new HashSet<IPAddress> { IPAddress.Parse("2001:db8::10") }, default));
        Assert.Contains("IPv6 next hop", e.Message);
    }

    private BgpAnnouncer Announcer(TestHost balancer, TestHost router, TempDirectory folder) => Announcer(balancer, router.Address, folder);

    private BgpAnnouncer Announcer(TestHost balancer, IPAddress router, TempDirectory folder) =>
        new(Options(balancer.Address, router, folder.Combine(balancer.Name, "gobgpd.sock")) with
        {
            CommandPrefix = ["/usr/bin/nsenter", $"--net={balancer.NamespacePath}", "--"],
        }, new TestOutputLogger<BgpAnnouncer>(output, balancer.Name, _clock));

    private static BgpOptions Options(IPAddress balancer, IPAddress router, string socket) => new()
    {
        PeerAddress = router,
        PeerAsn = BirdRouter.Asn,
        LocalAsn = BalancerAsn,
        LocalAddress = balancer,
        ApiSocket = socket,
    };

    private static async Task<IReadOnlyList<string>> GlobalRibAsync(BgpAnnouncer announcer)
    {
        var request = new ListPathRequest { TableType = TableType.Global, Family = new Family { Afi = Family.Types.Afi.Ip, Safi = Family.Types.Safi.Unicast } };
        using var call = announcer.Daemon.Client.ListPath(request, deadline: DateTime.UtcNow.AddSeconds(5));
        var prefixes = new List<string>();
        while (await call.ResponseStream.MoveNext(default))
        {
            prefixes.Add(call.ResponseStream.Current.Destination.Prefix);
        }

        return [.. prefixes.Order()];
    }

    private static void Kill(int pid)
    {
        if (kill(pid, 9) != 0)
        {
            throw new InvalidOperationException($"kill -9 {pid} failed ({Marshal.GetLastPInvokeError()})");
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
