using System.Net;
using System.Runtime.InteropServices;

namespace Heddle.Testing.Hosts;

/// <summary>
/// Hosts in network namespaces on one bridge, on this machine: each with an address of its own from 198.18.N.0/24
/// (198.18.0.0/15 is reserved for network benchmarks; N is chosen per bed so beds of tests running at once never meet),
/// running real executables, with link faults on any host (<see cref="TestHost.CutAsync"/>, <see cref="TestHost.DropAsync"/>,
/// <see cref="TestHost.DegradeAsync"/>, <see cref="TestHost.HealAsync"/>). While the bed exists the root namespace
/// routes its subnet to a blackhole, so nothing from this machine's own namespace reaches a test host by mistake (nor
/// leaves the machine). Disposing kills every process the bed started and removes every namespace, link and route,
/// whatever state a failed test left them in. Needs root.
/// </summary>
public sealed class TestBed : IAsyncDisposable
{
    private readonly List<TestHost> _hosts = [];
    private bool _routed;

    private TestBed(int subnet)
    {
        Subnet = subnet;
        Bridge = $"hb{subnet}";
    }

    /// <summary>N in 198.18.N.0/24.</summary>
    public int Subnet { get; }

    /// <summary>The bridge every host's link is on (in the root namespace, with no address there).</summary>
    public string Bridge { get; }

    public string Prefix => $"198.18.{Subnet}.0/24";

    public IReadOnlyList<TestHost> Hosts => _hosts;

    public TestHost this[string name] => _hosts.Single(h => h.Name == name);

    /// <summary>Whether this machine can hold a bed: root, with ip, nft, nsenter and ethtool.</summary>
    public static bool Supported => geteuid() == 0
        && File.Exists("/usr/sbin/ip") && File.Exists("/usr/sbin/nft") && File.Exists("/usr/bin/nsenter") && File.Exists("/usr/sbin/ethtool");

    [DllImport("libc", SetLastError = true)]
    private static extern uint geteuid();

    /// <summary>A bed with one host per name, host i at 198.18.N.(10+i).</summary>
    public static async Task<TestBed> CreateAsync(params string[] hosts)
    {
        if (!Supported)
        {
            throw new InvalidOperationException("a test bed needs root and ip, nft, nsenter and ethtool (iproute2, nftables, util-linux, ethtool)");
        }

        var bed = await ClaimAsync();
        try
        {
            await Ip.RunAsync("link", "set", bed.Bridge, "up");
            await Ip.RunAsync("route", "add", "blackhole", bed.Prefix);
            bed._routed = true;
            for (var i = 0; i < hosts.Length; i++)
            {
                bed._hosts.Add(await TestHost.CreateAsync(bed, hosts[i], i, IPAddress.Parse($"198.18.{bed.Subnet}.{10 + i}")));
            }

            return bed;
        }
        catch
        {
            await bed.DisposeAsync();
            throw;
        }
    }

    /// <summary>The bridge's name is the claim: creating it fails when another bed (of this run or of one that crashed) has that subnet.</summary>
    private static async Task<TestBed> ClaimAsync()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var subnet = 1 + Random.Shared.Next(254);
            var bed = new TestBed(subnet);
            if ((await Ip.TryRunAsync("link", "add", "name", bed.Bridge, "type", "bridge")).ExitCode == 0)
            {
                return bed;
            }
        }

        throw new InvalidOperationException("no free subnet of 198.18.0.0/16 for a test bed (bridges hb1..hb254 all exist: remove stale ones with 'ip link del hbN')");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        await Ip.TryRunAsync("link", "del", Bridge);
        if (_routed)
        {
            await Ip.TryRunAsync("route", "del", "blackhole", Prefix);
        }
    }
}
