using System.Diagnostics;
using System.Text.Json;
using Heddle.Testing;
using Heddle.Testing.Hosts;

namespace Heddle.EndToEnd.Tests.Hosts;

/// <summary>
/// A replicated control plane on hosts of its own, as an operator would lay it out: three etcd members (e1..e3), three
/// controllers (c1..c3) sharing them, three nodes (n1..n3) whose agents know every controller, and a client host (cl)
/// from which every `heddle` command is run. The hello sample runs on the nodes. Built once for the scenarios of a test
/// class; each scenario leaves every link healed.
/// </summary>
public sealed class ControlPlaneBed : IAsyncLifetime
{
    public const int ApiPort = 7443;
    public const int AgentPort = 7001;

    private TestBed? _bed;
    private readonly TempDirectory _state = new("heddle-bed-");
    private global::Heddle.Agent.Isolation.UidBlock? _uids;
    private readonly Dictionary<string, HostProcess> _controllers = [];
    private readonly Dictionary<string, HostProcess> _agents = [];

    public TestBed Bed => _bed ?? throw new InvalidOperationException("the bed is not built");

    public string ClientHome => _state.Combine("client");

    public IReadOnlyDictionary<string, HostProcess> Controllers => _controllers;

    public IReadOnlyDictionary<string, HostProcess> Agents => _agents;

    public IEnumerable<HostProcess> EtcdMembers => Bed.Hosts.Where(h => h.Name.StartsWith('e')).SelectMany(h => h.Processes);

    public async Task InitializeAsync()
    {
        File.SetUnixFileMode(_state.Path, global::Heddle.Agent.Isolation.StateFolders.PassThrough);
        _uids = global::Heddle.Agent.Isolation.UidBlock.Lease();
        _bed = await TestBed.CreateAsync("e1", "e2", "e3", "c1", "c2", "c3", "n1", "n2", "n3", "cl");
        try
        {
            await StartEtcdAsync();
            await StartControllersAsync();
            await StartAgentsAsync();
            var deploy = await ClientAsync(TimeSpan.FromSeconds(180), "deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath, "--wait");
            Assert.True(deploy.ExitCode == 0, $"deploy on the bed: {deploy}\n{Describe()}");
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"the control-plane bed did not come up: {e.Message}\n{Describe()}", e);
        }
    }

    private string Url(string host, int port) => $"https://{Bed[host].Address}:{port}";

    /// <summary>scripts/several-machines.sh, whose steps README's "Running on several machines" shows.</summary>
    public static string Script => Path.Combine(RepositoryRootAttribute.Value, "scripts", "several-machines.sh");

    private static readonly Dictionary<string, string> ScriptEnvironment = new() { ["HEDDLE"] = global::Heddle.EndToEnd.Tests.Heddle.Executable };

    private string Pki => _state.Combine("pki");

    private string Members => string.Join(',', new[] { "e1", "e2", "e3" }.Select(e => $"{e}={Bed[e].Address}"));

    /// <summary>Step 1, on the first controller host: the CA and every certificate; then what the operator carries to each host.</summary>
    private async Task MakeCertificatesAsync()
    {
        var pki = await Bed["c1"].RunAsync(TimeSpan.FromSeconds(60), ScriptEnvironment, "/bin/bash", Script, "pki", Pki, Members, "c1,c2,c3");
        Assert.True(pki.ExitCode == 0, $"several-machines.sh pki: {pki}");
        foreach (var name in new[] { "c1", "c2", "c3" })
        {
            Directory.CreateDirectory(_state.Combine(name));
            foreach (var file in new[] { "ca.crt", "ca.key" })
            {
                File.Copy(Path.Combine(Pki, file), _state.Combine(name, file));
            }
        }
    }

    /// <summary>Step 2, on each etcd host.</summary>
    private async Task StartEtcdAsync()
    {
        await MakeCertificatesAsync();
        foreach (var name in new[] { "e1", "e2", "e3" })
        {
            Bed[name].Start("etcd", "/bin/bash", [Script, "etcd", name, Bed[name].Address.ToString(), _state.Combine("etcd-" + name), Path.Combine(Pki, "etcd-" + name), Members], ScriptEnvironment);
        }

        foreach (var member in EtcdMembers)
        {
            await member.WaitForOutputAsync("ready to serve client requests", TimeSpan.FromSeconds(60));
        }
    }

    /// <summary>Step 3, on each controller host, the first one first (it makes the admin token); step 4, `heddle login` on the client.</summary>
    private async Task StartControllersAsync()
    {
        foreach (var name in new[] { "c1", "c2", "c3" })
        {
            var controller = Bed[name].Start("controller", "/bin/bash", [
                Script, "controller", _state.Combine(name), Bed[name].Address.ToString(), Members, Path.Combine(Pki, "controller-" + name),
                "--node-timeout", "10s", "--no-lb", "--uid-range", _uids!.Range.ToString(),
            ], ScriptEnvironment);
            _controllers[name] = controller;
            await controller.WaitForOutputAsync("API https://", TimeSpan.FromSeconds(60));
        }

        Directory.CreateDirectory(ClientHome);
        var urls = string.Join(',', new[] { "c1", "c2", "c3" }.Select(c => Url(c, ApiPort)));
        var login = await ClientAsync(TimeSpan.FromSeconds(60), "login", urls, "--token", File.ReadAllText(_state.Combine("c1", "api-token")).Trim(), "--ca-file", Path.Combine(Pki, "ca.crt"));
        Assert.True(login.ExitCode == 0, $"heddle login: {login}");
    }

    /// <summary>Step 5, a join string from the client; step 6, on each node host.</summary>
    private async Task StartAgentsAsync()
    {
        var join = await ClientAsync(TimeSpan.FromSeconds(30), "token", "create", "--join");
        Assert.True(join.ExitCode == 0, join.ToString());
        var controllers = string.Join(',', new[] { "c1", "c2", "c3" }.Select(c => Bed[c].Address.ToString()));
        var fd = 0;
        foreach (var name in new[] { "n1", "n2", "n3" })
        {
            var state = _state.Combine(name);
            Directory.CreateDirectory(state);
            File.SetUnixFileMode(state, global::Heddle.Agent.Isolation.StateFolders.PassThrough);
            _agents[name] = Bed[name].Start("agent", "/bin/bash", [
                Script, "agent", state, Bed[name].Address.ToString(), controllers, $"fd{++fd}",
                "--name", name, "--cores", "4", "--stop-instances-on-exit", "--uid-range", _uids!.Range.ToString(),
            ], new Dictionary<string, string>(ScriptEnvironment) { ["HEDDLE_JOIN"] = join.Stdout.Trim() });
        }

        foreach (var agent in _agents.Values)
        {
            await agent.WaitForOutputAsync("Connected to the controller", TimeSpan.FromSeconds(60));
        }
    }

    /// <summary>A `heddle` command run on the client host with the bed's client configuration.</summary>
    public Task<ProcessResult> ClientAsync(TimeSpan deadline, params string[] args) =>
        Bed["cl"].RunAsync(deadline, new Dictionary<string, string> { ["HEDDLE_HOME"] = ClientHome }, Heddle.Executable, args);

    /// <summary>A command, and how long the user waited for it.</summary>
    public async Task<(ProcessResult Result, TimeSpan Took)> TimedAsync(params string[] args)
    {
        var clock = Stopwatch.StartNew();
        var result = await ClientAsync(TimeSpan.FromSeconds(60), args);
        return (result, clock.Elapsed);
    }

    /// <summary>Who leads now, as the controllers say (null when none does or none answers).</summary>
    public async Task<string?> LeaderAsync()
    {
        var run = await ClientAsync(TimeSpan.FromSeconds(30), "info", "-o", "json");
        if (run.ExitCode != 0)
        {
            return null;
        }

        using var info = JsonDocument.Parse(run.Stdout);
        return info.RootElement.TryGetProperty("leader", out var leader) && leader.ValueKind == JsonValueKind.String ? leader.GetString() : null;
    }

    /// <summary>
    /// Who leads, once that is settled: `heddle info` names a controller whose last word on leadership is that it leads,
    /// and no other controller says it leads (just after a change, etcd can still name a leader that has stepped down).
    /// </summary>
    public async Task<string> SettledLeaderAsync() => (await Poll.UntilAsync(async () =>
    {
        var leader = await LeaderAsync();
        var leading = Controllers.Where(c =>
        {
            var lines = c.Value.LinesWith(" leads (term ", DateTimeOffset.MinValue).Concat(c.Value.LinesWith(" stopped leading (term ", DateTimeOffset.MinValue)).ToList();
            return lines.Count > 0 && lines.MaxBy(l => l.Time).Line.Contains(" leads (term ", StringComparison.Ordinal);
        }).Select(c => c.Key).ToList();
        return leader is not null && leading.Count == 1 && leading[0] == ControllerHost(leader) ? leader : null;
    }, l => l is not null, TimeSpan.FromSeconds(60), $"one settled leader ({Describe()})"))!;

    /// <summary>The controller (c1..c3) whose API URL the holder names.</summary>
    public string ControllerHost(string holder) => new[] { "c1", "c2", "c3" }.Single(c => holder.Contains(Bed[c].Address.ToString(), StringComparison.Ordinal));

    /// <summary>Every instance as (id, node, pid, restarts, state), to compare before and after a fault.</summary>
    public async Task<IReadOnlyList<string>> InstancesAsync()
    {
        var run = await ClientAsync(TimeSpan.FromSeconds(30), "status", "hello", "-o", "json");
        Assert.True(run.ExitCode == 0, run.ToString());
        using var status = JsonDocument.Parse(run.Stdout);
        return [.. status.RootElement.GetProperty("instances").EnumerateArray()
            .Select(i => $"{i.GetProperty("id").GetString()} on {i.GetProperty("node").GetString()} pid {i.GetProperty("pid")} restarts {i.GetProperty("restarts")} {i.GetProperty("state").GetString()}")
            .Order(StringComparer.Ordinal)];
    }

    /// <summary>Event kinds and subjects since a time (NodeDown, LeaderElected, ...).</summary>
    public async Task<IReadOnlyList<(DateTimeOffset Time, string Kind, string Subject, string Message)>> EventsAsync(DateTimeOffset since)
    {
        var run = await ClientAsync(TimeSpan.FromSeconds(30), "events", "-o", "json");
        Assert.True(run.ExitCode == 0, run.ToString());
        using var events = JsonDocument.Parse(run.Stdout);
        return [.. events.RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("time").GetDateTimeOffset(), e.GetProperty("kind").GetString()!, e.GetProperty("subject").GetString() ?? string.Empty, e.GetProperty("message").GetString() ?? string.Empty))
            .Where(e => e.Item1 >= since)];
    }

    /// <summary>Every process's output and every host's fault, for a failure message.</summary>
    public string Describe()
    {
        if (_bed is null)
        {
            return "(no bed)";
        }

        return string.Join('\n', _bed.Hosts.Select(h => $"== {h}\n" + string.Join('\n', h.Processes.Select(p => $"-- {p}:\n{Tail(p.Output, 60)}"))));
    }

    private static string Tail(string text, int lines) => string.Join('\n', text.Split('\n').TakeLast(lines));

    /// <summary>With HEDDLE_BED_LOGS set to a folder, every process's whole output is written there (host-process.log) when the bed goes: what a failure's tail does not show.</summary>
    private void KeepLogs()
    {
        var folder = Environment.GetEnvironmentVariable("HEDDLE_BED_LOGS");
        if (string.IsNullOrEmpty(folder))
        {
            return;
        }

        Directory.CreateDirectory(folder);
        foreach (var host in Bed.Hosts)
        {
            var n = 0;
            foreach (var process in host.Processes)
            {
                File.WriteAllText(Path.Combine(folder, $"{host.Name}-{n++}-{Path.GetFileName(process.Label.Split(' ')[0])}.log"), $"{process}\n{process.Output}");
            }
        }
    }

    public async Task DisposeAsync()
    {
        if (_bed is not null)
        {
            KeepLogs();
            // Agents first, while the controllers still answer: they stop their instances on the way out.
            foreach (var agent in _agents.Values)
            {
                await agent.StopAsync();
            }

            await _bed.DisposeAsync();
            foreach (var node in new[] { "n1", "n2", "n3" })
            {
                global::Heddle.Agent.Isolation.InstanceDisk.RemoveAllUnder(_state.Combine(node));
            }
        }

        _state.Dispose();
        _uids?.Dispose();
    }
}
