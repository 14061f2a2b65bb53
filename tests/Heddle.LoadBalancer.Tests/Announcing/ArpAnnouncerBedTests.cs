using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Heddle.LoadBalancer.Announcing;
using Heddle.LoadBalancer.Announcing.Arp;
using Heddle.Testing;
using Heddle.Testing.Hosts;
using Xunit.Abstractions;

namespace Heddle.LoadBalancer.Tests.Announcing;

/// <summary>
/// ARP announcers on two balancer hosts (a, b) of a test bed, seen from a client host (cl) as a user would see them:
/// arping (which asks on the wire, not through the client's kernel) and the client kernel's neighbour entry for the
/// VIP. Both balancers route the VIP to themselves (`local VIP/32 dev lo`), as heddle lb does, so the kernel of either
/// would answer for it were it not told not to: an answer from a second MAC is what these tests look for. Each
/// announcer runs in this test process, started on a thread inside its host's network namespace (<see cref="HostThread"/>).
/// </summary>
public sealed partial class ArpAnnouncerBedTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task AnnounceAsync_OnA_ClientArpingGetsExactlyAsMac_KernelsStayQuiet()
    {
        await using var bed = await ArpBed.CreateAsync();
        await bed.A.AnnounceAsync(new HashSet<IPAddress> { bed.Vip }, CancellationToken.None);

        Assert.Equal([bed.MacOf("a")], await ArpingAsync(bed));
        Assert.Equal("1", (await bed.Bed["a"].RunAsync("/usr/bin/cat", "/proc/sys/net/ipv4/conf/eth0/arp_ignore")).Stdout.Trim());
        Assert.Equal("2", (await bed.Bed["a"].RunAsync("/usr/bin/cat", "/proc/sys/net/ipv4/conf/eth0/arp_announce")).Stdout.Trim());
        var status = bed.A.Status;
        Assert.True(status.Healthy, status.Detail);
        Assert.Equal($"arp on eth0 ({bed.MacOf("a")})", status.Detail);
        Assert.Equal([bed.Vip.ToString()], status.Announced);
        Assert.Empty(bed.B.Status.Announced);
    }

    [Fact]
    public async Task AnnounceAsync_VipMovesFromAToB_ClientNeighbourEntryMovesToBWithoutAsking()
    {
        await using var bed = await ArpBed.CreateAsync();
        await bed.A.AnnounceAsync(new HashSet<IPAddress> { bed.Vip }, CancellationToken.None);
        await bed.Client.RunAsync("/usr/bin/curl", "-s", "-m", "2", $"http://{bed.Vip}:9/"); // the client's kernel resolves the VIP: a answers
        await Poll.UntilAsync(() => NeighbourAsync(bed), mac => mac == bed.MacOf("a"), Within, "the client's neighbour entry for the VIP on a's MAC");

        var clock = Stopwatch.StartNew();
        await bed.A.AnnounceAsync(new HashSet<IPAddress>(), CancellationToken.None);
        await bed.B.AnnounceAsync(new HashSet<IPAddress> { bed.Vip }, CancellationToken.None);
        await Poll.UntilAsync(() => NeighbourAsync(bed), mac => mac == bed.MacOf("b"), Within, "the client's neighbour entry for the VIP on b's MAC", TimeSpan.FromMilliseconds(5));
        output.WriteLine($"the client's neighbour entry moved to b {clock.ElapsedMilliseconds} ms after the VIP was withdrawn on a and announced on b");

        Assert.Equal([bed.MacOf("b")], await ArpingAsync(bed));
        Assert.Empty(bed.A.Status.Announced);
    }

    [Fact]
    public async Task DisposeAsync_AsAKillWould_NobodyAnswersThoughTheLocalRouteStays()
    {
        await using var bed = await ArpBed.CreateAsync();
        await bed.A.AnnounceAsync(new HashSet<IPAddress> { bed.Vip }, CancellationToken.None);
        Assert.Equal([bed.MacOf("a")], await ArpingAsync(bed));

        await bed.A.DisposeAsync();

        Assert.Empty(await ArpingAsync(bed));
        Assert.Contains($"local {bed.Vip}", (await bed.Bed["a"].RunAsync("/usr/sbin/ip", "route", "show", "table", "local", $"{bed.Vip}/32")).Stdout);
        Assert.False(bed.A.Status.Healthy);
    }

    [Fact]
    public async Task Status_InterfaceDeletedAndMadeAgain_UnhealthyThenBoundToTheNewOne()
    {
        await using var bed = await TestBed.CreateAsync("a");
        var host = bed["a"];
        await AddLinkAsync(host);
        await using var announcer = new ArpAnnouncer(new ArpAnnouncerOptions { Interface = "arp0", InterfaceCheckInterval = TimeSpan.FromMilliseconds(100) });
        await host.InNamespaceAsync(() => announcer.StartAsync(CancellationToken.None).GetAwaiter().GetResult());
        Assert.True(announcer.Status.Healthy, announcer.Status.Detail);

        Ip.Check(await host.RunAsync("/usr/sbin/ip", "link", "del", "arp0"));
        Assert.Equal("arp on arp0 (", announcer.Status.Detail[..13]);
        Assert.EndsWith("the interface is gone", announcer.Status.Detail);
        Assert.False(announcer.Status.Healthy);

        await AddLinkAsync(host);
        var mac = Mac().Match((await host.RunAsync("/usr/sbin/ip", "-br", "link", "show", "arp0")).Stdout).Value;
        await Poll.UntilAsync(() => Task.FromResult(announcer.Status), s => s.Healthy, Within, "the announcer bound to the new arp0");
        Assert.Equal($"arp on arp0 ({mac})", announcer.Status.Detail);
        Assert.Equal("1", (await host.RunAsync("/usr/bin/cat", "/proc/sys/net/ipv4/conf/arp0/arp_ignore")).Stdout.Trim());
        await announcer.DisposeAsync();
    }

    /// <summary>
    /// arp0, up with a carrier: one end of a veth pair (this kernel may lack the dummy link type). The kernel marks a link
    /// running (operstate UP) a moment after `ip link set up` returns (its link watch batches such events, up to a second
    /// apart), so this waits for that before it returns.
    /// </summary>
    private static async Task AddLinkAsync(TestHost host)
    {
        Ip.Check(await host.RunAsync("/usr/sbin/ip", "link", "add", "arp0", "type", "veth", "peer", "name", "arp0p"));
        Ip.Check(await host.RunAsync("/usr/sbin/ip", "link", "set", "arp0p", "up"));
        Ip.Check(await host.RunAsync("/usr/sbin/ip", "link", "set", "arp0", "up"));
        await Poll.UntilAsync(async () => (await host.RunAsync("/usr/sbin/ip", "-br", "link", "show", "arp0")).Stdout,
            line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, "UP", ..], Within, "arp0 running (operstate UP)");
    }

    [Fact]
    public async Task StartAsync_NoSuchInterface_SaysSo()
    {
        await using var announcer = new ArpAnnouncer(new ArpAnnouncerOptions { Interface = "nosuch0" });

        var e = await Assert.ThrowsAsync<AnnouncerException>(() => announcer.StartAsync(CancellationToken.None));

        Assert.StartsWith("there is no interface nosuch0 on this host", e.Message);
    }

    [Fact]
    public async Task StartAsync_Loopback_NoEthernetAddress()
    {
        await using var announcer = new ArpAnnouncer(new ArpAnnouncerOptions { Interface = "lo" });

        var e = await Assert.ThrowsAsync<AnnouncerException>(() => announcer.StartAsync(CancellationToken.None));

        Assert.StartsWith("interface lo has no Ethernet address", e.Message);
    }

    /// <summary>The MACs that answered three broadcast requests for the VIP from the client (none: arping fails).</summary>
    private async Task<IReadOnlyList<string>> ArpingAsync(ArpBed bed)
    {
        var result = await bed.Client.RunAsync("/usr/sbin/arping", "-i", "eth0", "-c", "3", "-W", "0.2", "-w", "2", "-r", bed.Vip.ToString());
        output.WriteLine($"arping {bed.Vip}: {result}");
        return [.. Mac().Matches(result.Stdout).Select(m => m.Value).Distinct()];
    }

    /// <summary>The MAC in the client's neighbour entry for the VIP, if it has one with an address.</summary>
    private static async Task<string?> NeighbourAsync(ArpBed bed)
    {
        var result = await bed.Client.RunAsync("/usr/sbin/ip", "neigh", "show", bed.Vip.ToString(), "dev", "eth0");
        var match = Regex.Match(result.Stdout, @"lladdr (\S+)");
        return match.Success ? match.Groups[1].Value : null;
    }

    [GeneratedRegex("(?:[0-9a-f]{2}:){5}[0-9a-f]{2}")]
    private static partial Regex Mac();

    /// <summary>Hosts a and b with an announcer each (running, announcing nothing yet) and the VIP routed locally on both; the client cl.</summary>
    private sealed class ArpBed : IAsyncDisposable
    {
        private readonly Dictionary<string, string> _macs = [];

        private ArpBed(TestBed bed)
        {
            Bed = bed;
            Vip = IPAddress.Parse($"198.18.{bed.Subnet}.200");
        }

        public TestBed Bed { get; }

        public IPAddress Vip { get; }

        public ArpAnnouncer A { get; } = new(Options());

        public ArpAnnouncer B { get; } = new(Options());

        public TestHost Client => Bed["cl"];

        public string MacOf(string host) => _macs[host];

        public static async Task<ArpBed> CreateAsync()
        {
            var bed = new ArpBed(await TestBed.CreateAsync("a", "b", "cl"));
            try
            {
                foreach (var (name, announcer) in new[] { ("a", bed.A), ("b", bed.B) })
                {
                    var host = bed.Bed[name];
                    Ip.Check(await host.RunAsync("/usr/sbin/ip", "route", "replace", "local", $"{bed.Vip}/32", "dev", "lo", "table", "local"));
                    bed._macs[name] = Mac().Match((await host.RunAsync("/usr/sbin/ip", "-br", "link", "show", "eth0")).Stdout).Value;
                    await host.InNamespaceAsync(() => announcer.StartAsync(CancellationToken.None).GetAwaiter().GetResult());
                }

                return bed;
            }
            catch
            {
                await bed.DisposeAsync();
                throw;
            }
        }

        // Short gaps between gratuitous rounds would hide a first round that does not work; the defaults are kept.
        private static ArpAnnouncerOptions Options() => new() { Interface = "eth0" };

        public async ValueTask DisposeAsync()
        {
            // The announcers' receiver threads are in the hosts' namespaces: they end before the namespaces go.
            await A.DisposeAsync();
            await B.DisposeAsync();
            await Bed.DisposeAsync();
        }
    }

    private static class Ip
    {
        public static void Check(ProcessResult result)
        {
            if (result.ExitCode != 0)
            {
                throw new InvalidOperationException(result.ToString());
            }
        }
    }
}
