using System.Net;

namespace Heddle.Testing.Hosts;

/// <summary>
/// One host of a <see cref="TestBed"/>: a network namespace with one link (eth0) to the bed's bridge and an address,
/// the processes started on it, and the faults a link can have. Processes enter only the namespace's network
/// (<c>nsenter --net</c>, not <c>ip netns exec</c>, which remounts /sys and hides the cgroup hierarchies from an agent).
/// </summary>
public sealed class TestHost : IAsyncDisposable
{
    private readonly TestBed _bed;
    private readonly List<HostProcess> _processes = [];

    private TestHost(TestBed bed, string name, int index, IPAddress address)
    {
        _bed = bed;
        Name = name;
        Address = address;
        Namespace = $"{bed.Bridge}-{name}";
        RootLink = $"{bed.Bridge}h{index}";
        _wireLink = $"{bed.Bridge}w{index}";
        _wireBridgeLink = $"{bed.Bridge}x{index}";
    }

    private readonly string _wireLink;
    private readonly string _wireBridgeLink;
    private DelayWire? _wire;

    public string Name { get; }

    public IPAddress Address { get; }

    /// <summary>The network namespace's name (under /run/netns).</summary>
    public string Namespace { get; }

    public string NamespacePath => $"/run/netns/{Namespace}";

    /// <summary>The root namespace's end of the host's link, on the bridge.</summary>
    public string RootLink { get; }

    /// <summary>What is wrong with the host's link now (none, cut, dropped, degraded).</summary>
    public string Fault { get; private set; } = "none";

    public IReadOnlyList<HostProcess> Processes => _processes;

    internal static async Task<TestHost> CreateAsync(TestBed bed, string name, int index, IPAddress address)
    {
        var host = new TestHost(bed, name, index, address);
        await Ip.RunAsync("netns", "add", host.Namespace);
        await Ip.RunAsync("link", "add", host.RootLink, "type", "veth", "peer", "name", "eth0", "netns", host.Namespace);
        await Ip.RunAsync("link", "set", host.RootLink, "master", bed.Bridge, "up");
        await host.RunCheckedAsync("/usr/sbin/ip", "addr", "add", $"{address}/24", "dev", "eth0");
        await host.RunCheckedAsync("/usr/sbin/ip", "link", "set", "eth0", "up");
        await host.RunCheckedAsync("/usr/sbin/ip", "link", "set", "lo", "up");
        return host;
    }

    /// <summary>Runs a program on this host to completion.</summary>
    public Task<ProcessResult> RunAsync(string program, params string[] args) => Ip.InAsync(NamespacePath, program, args);

    /// <summary>Runs a program on this host to completion within <paramref name="deadline"/>, with these environment variables added.</summary>
    public Task<ProcessResult> RunAsync(TimeSpan deadline, IReadOnlyDictionary<string, string> environment, string program, params string[] args) =>
        Ip.InAsync(NamespacePath, program, args, deadline, environment);

    private async Task RunCheckedAsync(string program, params string[] args) => Ip.Check($"on {Name}: {program}", args, await RunAsync(program, args));

    /// <summary>Starts a long-running program on this host (stopped when the bed is disposed, if not before).</summary>
    public HostProcess Start(string label, string program, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var process = HostProcess.Start(this, label, program, args, environment);
        lock (_processes)
        {
            _processes.Add(process);
        }

        return process;
    }

    /// <summary>The link is cut: the interface goes down on both ends (the host and its peers see the carrier lost).</summary>
    public async Task CutAsync()
    {
        await Ip.RunAsync("link", "set", RootLink, "down");
        Fault = "cut";
    }

    /// <summary>
    /// The host goes silent with its link up: every packet it sends and every packet sent to it is dropped (nftables in
    /// its namespace; ARP too), so peers get no answer at all (no reset, no unreachable), as a host that hangs or a switch
    /// port that black-holes. Its own loopback keeps working.
    /// </summary>
    public async Task DropAsync()
    {
        await ClearAsync();

        // One nft run from one file: the rules take effect together (a transaction), so the silence starts at one instant
        // inside this call, and the time after it returns is all silent.
        var rules = Path.Combine(Path.GetTempPath(), $"heddlebed-{Name}-{Guid.NewGuid():N}.nft");
        await File.WriteAllTextAsync(rules, $$"""
            table inet {{Table}} {
                chain in { type filter hook input priority -300; policy drop; iif "lo" accept; }
                chain out { type filter hook output priority -300; policy drop; oif "lo" accept; }
            }
            table arp {{Table}} {
                chain in { type filter hook input priority 0; policy drop; }
                chain out { type filter hook output priority 0; policy drop; }
            }

            """);
        try
        {
            await NftAsync("-f", rules);
        }
        finally
        {
            File.Delete(rules);
        }

        Fault = "dropped";
    }

    /// <summary>
    /// A bad link: <paramref name="lossPercent"/> of what the host sends is lost (nftables, at random), and with
    /// <paramref name="delay"/> every frame it sends waits that long before it reaches the bridge, as tc netem on its
    /// interface would (this kernel has no netem: the host's link is taken off the bridge and joined to it again through
    /// a <see cref="DelayWire"/> in this process; established connections survive the switch).
    /// </summary>
    public async Task DegradeAsync(TimeSpan delay, double lossPercent)
    {
        await ClearAsync();
        if (delay > TimeSpan.Zero)
        {
            await WireAsync(delay);
        }

        if (lossPercent > 0)
        {
            await NftAsync("add", "table", "inet", Table);
            await NftAsync("add", "chain", "inet", Table, "out", "{ type filter hook output priority -300; }");
            await NftAsync("add", "rule", "inet", Table, "out", "oif", "!=", "lo", "numgen", "random", "mod", "100", "<", $"{Math.Round(lossPercent):0}", "drop");
        }

        Fault = $"delay {delay.TotalMilliseconds:0} ms, loss {lossPercent:0.##}%";
    }

    /// <summary>Frames the delay wire carried so far (none without a delay).</summary>
    public long WiredFrames => _wire?.Sent ?? 0;

    private async Task WireAsync(TimeSpan delay)
    {
        // The wire reads and writes whole frames: every sender on the bridge must finish its frames (checksums,
        // segments) itself, or the frames it carries arrive with checksums nobody computed.
        foreach (var host in _bed.Hosts)
        {
            await host.RunCheckedAsync("/usr/sbin/ethtool", "-K", "eth0", "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off");
        }

        await Ip.RunAsync("link", "add", _wireLink, "type", "veth", "peer", "name", _wireBridgeLink);
        foreach (var link in new[] { RootLink, _wireLink, _wireBridgeLink })
        {
            Ip.Check("ethtool", [link], await Task.Run(() => ProcessRunner.Run("/usr/sbin/ethtool", ["-K", link, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off"], TimeSpan.FromSeconds(10))));
        }

        await Ip.RunAsync("link", "set", _wireLink, "up");
        await Ip.RunAsync("link", "set", _wireBridgeLink, "master", _bed.Bridge, "up");
        _wire = DelayWire.Start(RootLink, _wireLink, delay, TimeSpan.Zero);
        await Ip.RunAsync("link", "set", RootLink, "nomaster");
    }

    private async Task UnwireAsync()
    {
        if (_wire is null)
        {
            return;
        }

        await Ip.TryRunAsync("link", "set", RootLink, "master", _bed.Bridge);
        _wire.Dispose();
        _wire = null;
        await Ip.TryRunAsync("link", "del", _wireLink);
    }

    /// <summary>Undoes any fault.</summary>
    public async Task HealAsync()
    {
        await ClearAsync();
        await Ip.RunAsync("link", "set", RootLink, "up");
        Fault = "none";
    }

    private const string Table = "heddlebed";

    private async Task NftAsync(params string[] args) => await RunCheckedAsync("/usr/sbin/nft", args);

    private async Task ClearAsync()
    {
        await UnwireAsync();
        await RunAsync("/usr/sbin/nft", "delete", "table", "inet", Table);
        await RunAsync("/usr/sbin/nft", "delete", "table", "arp", Table);
    }

    public async ValueTask DisposeAsync()
    {
        HostProcess[] processes;
        lock (_processes)
        {
            processes = [.. _processes];
        }

        foreach (var process in processes)
        {
            await process.DisposeAsync();
        }

        // Whatever still runs in the namespace (an instance a killed agent left behind) goes with it.
        var pids = await Ip.TryRunAsync("netns", "pids", Namespace);
        foreach (var pid in pids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (int.TryParse(pid, out var id))
            {
                HostProcess.Signal(id, HostProcess.SigKill);
            }
        }

        await UnwireAsync();
        await Ip.TryRunAsync("link", "del", RootLink);
        await Ip.TryRunAsync("netns", "del", Namespace);
    }

    public override string ToString() => $"{Name} ({Address}, {Fault})";
}
