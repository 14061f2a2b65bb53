using System.Diagnostics;
using System.Text.Json;
using Heddle.Testing;
using Heddle.Testing.Hosts;

namespace Heddle.EndToEnd.Tests.Hosts;

/// <summary>
/// VIPs on a real network: a controller (c1) whose VIP pool is part of the hosts' subnet, two nodes (n1, n2) running the
/// hello sample, balancers on hosts of their own (lb1, lb2) and a client (cl) on the same bridge, as an operator lays out
/// a flat network. The balancers are started by each scenario, in the mode it tries (<see cref="StartBalancer"/>).
/// </summary>
public sealed class BalancerBed : IAsyncLifetime
{
    public const int ApiPort = 7443;
    public const int AgentPort = 7001;

    private TestBed? _bed;
    private readonly TempDirectory _state = new("heddle-lbbed-");
    private global::Heddle.Agent.Isolation.UidBlock? _uids;
    private readonly Dictionary<string, HostProcess> _agents = [];

    public TestBed Bed => _bed ?? throw new InvalidOperationException("the bed is not built");

    public string ClientHome => _state.Combine("client");

    /// <summary>The VIP pool: the top of the hosts' /24, which no host address uses (hosts are .10 up).</summary>
    public string VipPool => $"198.18.{Bed.Subnet}.192/27";

    public HostProcess? Controller { get; private set; }

    public async Task InitializeAsync()
    {
        File.SetUnixFileMode(_state.Path, global::Heddle.Agent.Isolation.StateFolders.PassThrough);
        _uids = global::Heddle.Agent.Isolation.UidBlock.Lease();
        _bed = await TestBed.CreateAsync("c1", "n1", "n2", "lb1", "lb2", "cl");
        try
        {
            var c1 = Bed["c1"];
            Controller = c1.Start("controller", Heddle.Executable, [
                "controller", "--state", _state.Combine("c1"), "--listen", c1.Address.ToString(), "--api-port", ApiPort.ToString(), "--agent-port", AgentPort.ToString(),
                "--vip-pool", VipPool, "--no-lb", "--no-dns", "--uid-range", _uids.Range.ToString(),
            ]);
            await Controller.WaitForOutputAsync("API https://", TimeSpan.FromSeconds(60));
            Directory.CreateDirectory(ClientHome);
            var login = await ClientAsync(TimeSpan.FromSeconds(60), "login", $"https://{c1.Address}:{ApiPort}", "--token", Token, "--ca-file", _state.Combine("c1", "ca.crt"));
            Assert.True(login.ExitCode == 0, $"heddle login: {login}");
            await StartAgentsAsync();
            var deploy = await ClientAsync(TimeSpan.FromSeconds(180), "deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath);
            Assert.True(deploy.ExitCode == 0, $"deploy on the bed: {deploy}\n{Describe()}");
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"the balancer bed did not come up: {e.Message}\n{Describe()}", e);
        }
    }

    private string Token => File.ReadAllText(_state.Combine("c1", "api-token")).Trim();

    private async Task StartAgentsAsync()
    {
        var join = await ClientAsync(TimeSpan.FromSeconds(30), "token", "create", "--join");
        Assert.True(join.ExitCode == 0, join.ToString());
        var fd = 0;
        foreach (var name in new[] { "n1", "n2" })
        {
            var state = _state.Combine(name);
            Directory.CreateDirectory(state);
            File.SetUnixFileMode(state, global::Heddle.Agent.Isolation.StateFolders.PassThrough);
            _agents[name] = Bed[name].Start("agent", Heddle.Executable, [
                "agent", "--state", state, "--address", Bed[name].Address.ToString(), "--controller", $"https://{Bed["c1"].Address}:{AgentPort}", "--fault-domain", $"fd{++fd}",
                "--name", name, "--cores", "4", "--stop-instances-on-exit", "--uid-range", _uids!.Range.ToString(),
            ], new Dictionary<string, string> { ["HEDDLE_JOIN"] = join.Stdout.Trim() });
        }

        foreach (var agent in _agents.Values)
        {
            await agent.WaitForOutputAsync("Connected to the controller", TimeSpan.FromSeconds(60));
        }
    }

    /// <summary>`heddle lb` on its host, as README's "VIPs on a network" shows, with these announce options.</summary>
    public HostProcess StartBalancer(string host, params string[] announce)
    {
        var h = Bed[host];
        var token = _state.Combine("c1", "api-token");
        return h.Start("lb", Heddle.Executable, [
            "lb", "--controller", $"https://{Bed["c1"].Address}:{ApiPort}", "--token-file", token, "--ca-file", _state.Combine("c1", "ca.crt"),
            "--name", host, "--address", h.Address.ToString(), .. announce,
        ]);
    }

    /// <summary>A `heddle` command run on the client host with the bed's client configuration.</summary>
    public Task<ProcessResult> ClientAsync(TimeSpan deadline, params string[] args) =>
        Bed["cl"].RunAsync(deadline, new Dictionary<string, string> { ["HEDDLE_HOME"] = ClientHome }, Heddle.Executable, args);

    /// <summary>The hello service's VIP.</summary>
    public async Task<string> VipAsync()
    {
        var run = await ClientAsync(TimeSpan.FromSeconds(30), "status", "hello", "-o", "json");
        Assert.True(run.ExitCode == 0, run.ToString());
        using var status = JsonDocument.Parse(run.Stdout);
        return status.RootElement.GetProperty("vip").GetString()!;
    }

    /// <summary>The balancers as `heddle lb list -o json` shows them: name → (state, owned VIPs).</summary>
    public async Task<IReadOnlyDictionary<string, (string State, IReadOnlyList<string> Owned)>> BalancersAsync()
    {
        var run = await ClientAsync(TimeSpan.FromSeconds(30), "lb", "list", "-o", "json");
        Assert.True(run.ExitCode == 0, run.ToString());
        using var list = JsonDocument.Parse(run.Stdout);
        return list.RootElement.EnumerateArray().ToDictionary(b => b.GetProperty("name").GetString()!,
            b => (b.GetProperty("state").GetString()!, (IReadOnlyList<string>)[.. b.GetProperty("owned").EnumerateArray().Select(v => v.GetString()!)]));
    }

    /// <summary>One HTTP GET of the VIP from a host, within <paramref name="timeout"/>: true when the hello sample answered.</summary>
    public async Task<bool> GetAsync(string from, string vip, TimeSpan timeout)
    {
        var run = await Bed[from].RunAsync(timeout + TimeSpan.FromSeconds(5), new Dictionary<string, string>(), "/usr/bin/curl",
            "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", timeout.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture), $"http://{vip}:8080/");
        return run.ExitCode == 0 && run.Stdout.Trim() == "200";
    }

    /// <summary>The MAC addresses that answer ARP for <paramref name="vip"/> on the client's link (arping, a few requests).</summary>
    public async Task<IReadOnlySet<string>> ArpAnswersAsync(string vip, int count = 3)
    {
        var run = await Bed["cl"].RunAsync(TimeSpan.FromSeconds(20), new Dictionary<string, string>(), "/usr/sbin/arping", "-c", count.ToString(), "-w", "3", "-i", "eth0", vip);
        return run.Stdout.Split('\n').Select(MacIn).Where(m => m is not null).Select(m => m!).ToHashSet();
    }

    /// <summary>The client's neighbour entry for the VIP: the MAC it sends to, or null.</summary>
    public async Task<string?> NeighbourAsync(string vip)
    {
        var run = await Bed["cl"].RunAsync("/usr/sbin/ip", "neigh", "show", vip, "dev", "eth0");
        return MacIn(run.Stdout);
    }

    /// <summary>A host's MAC on the bed (its eth0).</summary>
    public async Task<string> MacOfAsync(string host)
    {
        var run = await Bed[host].RunAsync("/usr/sbin/ip", "-o", "link", "show", "eth0");
        return MacIn(run.Stdout.Replace("link/ether", "\n", StringComparison.Ordinal).Split('\n').ElementAtOrDefault(1) ?? string.Empty)
            ?? throw new InvalidOperationException($"no MAC in {run.Stdout}");
    }

    private static string? MacIn(string text) => System.Text.RegularExpressions.Regex.Match(text, "([0-9a-f]{2}:){5}[0-9a-f]{2}", System.Text.RegularExpressions.RegexOptions.IgnoreCase) is { Success: true } m
        ? m.Value.ToLowerInvariant()
        : null;

    /// <summary>Every process's output and every host's fault, for a failure message.</summary>
    public string Describe() => _bed is null
        ? "(no bed)"
        : string.Join('\n', _bed.Hosts.Select(h => $"== {h}\n" + string.Join('\n', h.Processes.Select(p => $"-- {p}:\n{string.Join('\n', p.Output.Split('\n').TakeLast(40))}"))));

    public async Task DisposeAsync()
    {
        if (_bed is not null)
        {
            foreach (var process in _bed.Hosts.Where(h => h.Name.StartsWith("lb", StringComparison.Ordinal)).SelectMany(h => h.Processes).Where(p => !p.HasExited))
            {
                await process.StopAsync();
            }

            foreach (var agent in _agents.Values)
            {
                await agent.StopAsync();
            }

            await _bed.DisposeAsync();
            foreach (var node in new[] { "n1", "n2" })
            {
                global::Heddle.Agent.Isolation.InstanceDisk.RemoveAllUnder(_state.Combine(node));
            }
        }

        _state.Dispose();
        _uids?.Dispose();
    }
}
