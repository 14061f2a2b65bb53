using System.CommandLine;
using System.Diagnostics;
using Heddle.Agent.Drivers;
using Heddle.Agent.Isolation;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;
using Heddle.Contracts.Files;
using Heddle.Controller.Store.Kv;

namespace Heddle.Cli.Commands;

/// <summary>
/// <c>heddle up</c>: a whole cluster on this machine. The controller and each agent are separate child processes,
/// so one node can be killed like a failing machine. Runs until Ctrl-C or SIGTERM, then stops every instance and
/// process it started.
/// </summary>
internal static class UpCommand
{
    public const string UpFile = "up.json";

    public static Command Create(CliConsole console)
    {
        var nodes = new Option<int>("--nodes") { Description = "How many nodes (agents) to start (default 3)", DefaultValueFactory = _ => 3 };
        var state = new Option<string?>("--state") { Description = "State directory (default $HEDDLE_HOME/cluster)" };
        var timeout = Durations.Option("--node-timeout", "A node silent this long is Down and its instances move", TimeSpan.FromSeconds(10));
        var cores = new Option<int>("--cores-per-node") { Description = "Physical cores each node claims (default 2)", DefaultValueFactory = _ => 2 };
        var threads = new Option<int>("--threads-per-core") { Description = "Threads per claimed core (default 1)", DefaultValueFactory = _ => 1 };
        var controllers = new Option<int>("--controllers")
        {
            Description = "How many controllers (default 1, on SQLite); more share a local etcd cluster of as many members, one of them leads and another takes over when it goes",
            DefaultValueFactory = _ => 1,
        };
        var command = new Command("up", "Start a local cluster (controller + agents) and keep it running until Ctrl-C") { nodes, state, timeout, cores, threads, controllers };
        command.SetAction(async (parse, ct) =>
        {
            var count = parse.GetValue(nodes);
            if (count is < 1 or > 200)
            {
                throw new UsageException($"--nodes {count} is outside 1..200");
            }

            var controllerCount = parse.GetValue(controllers);
            if (controllerCount is < 1 or > 7)
            {
                throw new UsageException($"--controllers {controllerCount} is outside 1..7 (3 or 5 survive the loss of 1 or 2)");
            }

            var root = Path.GetFullPath(parse.GetValue(state) ?? Path.Combine(ClientConfig.Home, "cluster"));
            return await RunAsync(console, root, count, parse.GetValue(timeout), parse.GetValue(cores), parse.GetValue(threads), controllerCount, ct);
        });
        return command;
    }

    /// <summary>The join string handed to the agents this process starts (and restarts) in their environment; used only by a node without its certificate.</summary>
    private static string? JoinString { get; set; }

    /// <summary>The token the DNS and load-balancer processes follow the controller with, handed in their environment.</summary>
    private static string? DataPlaneToken { get; set; }

    /// <summary>--uid-range for the controllers and agents this cluster starts (restarted ones included).</summary>
    private static string[] UidRangeArgs { get; set; } = [];

    private static async Task<int> RunAsync(CliConsole console, string root, int count, TimeSpan nodeTimeout, int cores, int threads, int controllerCount, CancellationToken ct)
    {
        var upFile = Path.Combine(ClientConfig.Home, UpFile);
        if (StateFiles.Read<UpState>(upFile) is { Pid: var pid } && pid != Environment.ProcessId && IsRunning(pid))
        {
            throw new CliException($"a cluster is already running from 'heddle up' (pid {pid}); stop it first (Ctrl-C there, or kill {pid})");
        }

        var logs = Path.Combine(root, "logs");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(logs, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var agentsRoot = AgentsRoot(console, root);
        var controllerState = Path.Combine(root, "controller");
        // A block of uids of this cluster's own (kept in uid-range across restarts): a second cluster on this machine gets another.
        UidBlock uidBlock;
        try
        {
            uidBlock = UidBlock.Lease(Path.Combine(root, "uid-range"));
        }
        catch (InvalidOperationException e)
        {
            throw new CliException(e.Message);
        }

        using var uidLease = uidBlock;
        UidRangeArgs = ["--uid-range", uidBlock.Range.ToString()];
        var children = new List<Child>();
        LocalEtcd? etcd = null;
        EtcdTlsFiles? etcdClient = null;
        try
        {
            // Several controllers share an etcd cluster of as many members on loopback, its data under the cluster's folder,
            // over TLS with certificates of the cluster CA: the CA is made first, and every controller gets its files.
            Func<string, string[]> store = _ => [];
            if (controllerCount > 1)
            {
                var pki = EtcdPki(root, controllerState, controllerCount);
                var plain = LocalEtcd.HoldsPlainCluster(Path.Combine(root, "etcd"));
                if (plain)
                {
                    console.Out.WriteLine($"note: the etcd cluster in {Path.Combine(root, "etcd")} was made without TLS by an earlier heddle, and its members can only meet again in clear; "
                        + "it stays so, on loopback. Start with a fresh --state (or remove that folder, and the cluster's state with it) for etcd over TLS");
                }

                etcdClient = plain ? null : pki.Clients["controller"];
                try
                {
                    etcd = await LocalEtcd.StartAsync(Path.Combine(root, "etcd"), controllerCount, plain ? null : pki.Members, ct);
                }
                catch (InvalidOperationException e)
                {
                    throw new CliException($"the etcd cluster for {controllerCount} controllers did not start: {e.Message}");
                }

                var option = etcd.StoreOption;
                store = name => plain ? ["--store", option] : ["--store", option, "--etcd-ca", pki.Clients[name].CaFile, "--etcd-cert", pki.Clients[name].CertificateFile, "--etcd-key", pki.Clients[name].KeyFile];
            }

            // The data plane (DNS, load balancer) runs in processes of its own, fed by the controller's API: a flood on a
            // VIP cannot take the controller down, and a controller restart does not interrupt traffic. The first
            // controller starts alone (on a fresh store it makes the cluster's CA and admin token); the others join it.
            var controller = await StartControllerAsync("controller", controllerState, logs, nodeTimeout, store("controller"), children, ct);
            var apiUrl = new Uri(controller.Address!);
            var agentUrl = controller.AgentUrl!;
            var others = new List<Child>();
            for (var k = 2; k <= controllerCount; k++)
            {
                others.Add(await StartControllerAsync($"controller-{k}", Path.Combine(root, $"controller-{k}"), logs, nodeTimeout, store($"controller-{k}"), children, ct));
            }

            var apiUrls = new[] { apiUrl }.Concat(others.Select(o => new Uri(o.Address!))).ToList();
            var agentUrls = new[] { agentUrl }.Concat(others.Select(o => o.AgentUrl!)).ToList();
            var caFile = Path.Combine(controllerState, "ca.crt");
            ClientConfig.Save(apiUrl, File.ReadAllText(Path.Combine(controllerState, "api-token")).Trim(), File.ReadAllText(caFile), apiUrls);
            using var api = ClientConfig.Load().Connect();
            JoinString = (await api.CreateTokenAsync(new TokenCreateRequest(Join: true, TtlSeconds: 86400, Description: $"heddle up {Environment.ProcessId}"), ct)).JoinString;
            // The data plane gets the admin token in its environment ($HEDDLE_TOKEN), never its path or value on a command line.
            DataPlaneToken = File.ReadAllText(Path.Combine(controllerState, "api-token")).Trim();
            var follow = new[] { "--controller", string.Join(',', apiUrls), "--ca-file", caFile };
            children.Add(Start("dns", Path.Combine(logs, "dns.log"), ["dns", .. follow, "--dns-port", "0", .. UpMetrics.Args]));
            children.Add(Start("lb", Path.Combine(logs, "lb.log"), ["lb", .. follow, .. UpMetrics.Args]));
            var dnsAddress = await WaitForDnsAsync(api, children, ct);
            // A DNS server that comes back must answer where clients already ask.
            var dns = children.FindIndex(c => c.Name == "dns");
            children[dns] = children[dns] with { Args = ["dns", .. follow, "--dns-port", System.Net.IPEndPoint.Parse(dnsAddress).Port.ToString(), .. UpMetrics.Args] };

            var memory = Math.Max(1024, Heddle.Agent.Node.NodeMemoryInfo.TotalMiB() / count);
            var known = (await api.ListNodesAsync(ct)).Select(n => n.Name).ToHashSet(StringComparer.Ordinal);
            for (var i = 1; i <= count; i++)
            {
                var name = $"n{i}";
                if (known.Contains(name) && !File.Exists(Path.Combine(agentsRoot, name, "node.crt")))
                {
                    // This cluster's node, started afresh without its certificate: its old one is revoked so that it can enrol again.
                    await api.RemoveNodeAsync(name, ct);
                }

                children.Add(Start(name, Path.Combine(logs, $"{name}.log"),
                [
                    // Each node talks to one controller first (spread round the controllers) and knows every other.
                    "agent", "--controller", string.Join(',', agentUrls.Skip((i - 1) % agentUrls.Count).Concat(agentUrls.Take((i - 1) % agentUrls.Count))),
                    "--name", name, "--address", $"127.0.1.{i}", "--log-port", "0", "--fault-domain", $"fd{i}", "--state", Path.Combine(agentsRoot, name),
                    "--cores", cores.ToString(), "--threads-per-core", threads.ToString(), "--memory-mib", memory.ToString(), "--stop-instances-on-exit",
                    "--fence-after", Durations.Format(nodeTimeout), .. UidRangeArgs, .. UpMetrics.Args,
                ]));
            }

            await WaitForNodesAsync(api, children, count, ct);
            // Where each agent, the DNS server and the balancer serve /metrics (port 0 at their first start), kept for restarts.
            for (var i = 0; i < children.Count; i++)
            {
                if (!children[i].IsController && await UpMetrics.WaitAsync(children[i].Log, children[i].Args[0], children[i].Process, ct) is { } metrics)
                {
                    children[i] = children[i] with { Args = UpMetrics.Pin(children[i].Args, metrics), Metrics = metrics };
                }
            }

            WriteUpFile(upFile, root, apiUrl, agentUrl, dnsAddress, children, etcd, etcdClient);
            Report(console, root, apiUrl, dnsAddress, children, count, cores, threads, memory);

            // A controller that comes back must listen where the agents and clients already look.
            for (var i = 0; i < children.Count; i++)
            {
                if (children[i].IsController && children[i].AgentUrl is { } agent)
                {
                    children[i] = children[i] with { Args = [.. children[i].Args, "--api-port", new Uri(children[i].Address!).Port.ToString(), "--agent-port", new Uri(agent).Port.ToString()] };
                }
            }

            await SuperviseAsync(console, children, () => WriteUpFile(upFile, root, apiUrl, agentUrl, dnsAddress, children, etcd, etcdClient), ct);
            console.Out.WriteLine("stopping the cluster: agents first (they stop their instances), then the controller");
            return ExitCodes.Ok;
        }
        finally
        {
            await StopAsync(children);
            if (etcd is not null)
            {
                await etcd.DisposeAsync(); // last: the controllers kept their state in it to the end
            }

            foreach (var agent in children.Where(c => c.IsAgent))
            {
                var killed = Heddle.Agent.Instances.LeftoverInstances.Stop(Path.Combine(agentsRoot, agent.Name), agent.Name);
                if (killed > 0)
                {
                    console.Out.WriteLine($"{agent.Name}: stopped {killed} instance(s) its agent had left running (the agent was gone)");
                }
            }

            if (!agentsRoot.StartsWith(root + "/", StringComparison.Ordinal) && Directory.Exists(Path.GetDirectoryName(agentsRoot)))
            {
                Directory.Delete(Path.GetDirectoryName(agentsRoot)!, recursive: true);
            }

            File.Delete(upFile);
            console.Out.WriteLine("cluster stopped; nothing it started is running");
        }
    }

    /// <summary>The etcd members' certificates (for 127.0.0.1) and each controller's client certificate, in etcd-pki.</summary>
    private sealed record EtcdFiles(IReadOnlyList<EtcdTlsFiles> Members, IReadOnlyDictionary<string, EtcdTlsFiles> Clients);

    /// <summary>
    /// The cluster CA (made in the first controller's state folder unless there) copied into every other controller's
    /// folder, and the etcd certificates it issues, made afresh at each start (so none expires under a cluster that is
    /// started again now and then). The store never holds the CA key: controllers take it from their folders.
    /// </summary>
    private static EtcdFiles EtcdPki(string root, string controllerState, int controllers)
    {
        var owner = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Directory.CreateDirectory(controllerState, owner);
        using var ca = Heddle.Controller.Trust.CertificateAuthority.LoadOrCreate(controllerState, TimeProvider.System);
        for (var k = 2; k <= controllers; k++)
        {
            var state = Path.Combine(root, $"controller-{k}");
            Directory.CreateDirectory(state, owner);
            if (!File.Exists(Path.Combine(state, "ca.crt")) && !File.Exists(Path.Combine(state, "ca.key")))
            {
                Heddle.Contracts.Trust.PrivateFile.Write(Path.Combine(state, "ca.key"), File.ReadAllText(Path.Combine(controllerState, "ca.key")));
                File.Copy(Path.Combine(controllerState, "ca.crt"), Path.Combine(state, "ca.crt"));
            }
        }

        var pki = Path.Combine(root, "etcd-pki");
        Directory.CreateDirectory(pki, owner);
        var lifetime = Heddle.Controller.Trust.EtcdCertificates.DefaultLifetime;
        var members = Enumerable.Range(0, controllers)
            .Select(i => Heddle.Controller.Trust.EtcdCertificates.WriteMember(ca, $"m{i}", ["127.0.0.1", "localhost"], pki, lifetime, TimeProvider.System)).ToList();
        var clients = new[] { "controller" }.Concat(Enumerable.Range(2, controllers - 1).Select(k => $"controller-{k}"))
            .ToDictionary(name => name, name => Heddle.Controller.Trust.EtcdCertificates.WriteClient(ca, name, pki, lifetime, TimeProvider.System));
        return new EtcdFiles(members, clients);
    }

    /// <summary>
    /// Where the nodes keep their state. Instances run as uids of their own and must pass through every folder above
    /// theirs; when the cluster's folder is somewhere they cannot (under /root, say), the nodes keep their state in
    /// /var/lib/heddle/up-&lt;hash&gt;/ instead, and it is removed when the cluster stops.
    /// </summary>
    private static string AgentsRoot(CliConsole console, string root)
    {
        var agents = Path.Combine(root, "agents");
        var full = Path.GetFullPath(agents) + "/";
        // Instances see a /tmp (and /dev/shm) of their own, which would hide their folders there.
        var why = !Posix.IsRoot ? null
            : Heddle.Agent.Isolation.StateFolders.Blocking(agents) is { } blocking ? $"{blocking} lets no other user through, and instances run as uids of their own"
            : full.StartsWith("/tmp/", StringComparison.Ordinal) || full.StartsWith("/dev/shm/", StringComparison.Ordinal) ? $"{root} is below /tmp or /dev/shm, which each instance sees a private one of"
            : null;
        if (why is null)
        {
            return agents;
        }

        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(root)))[..12];
        var elsewhere = Path.Combine("/var/lib/heddle", $"up-{hash}", "agents");
        console.Out.WriteLine($"note: {why}; the nodes keep their state in {elsewhere} (removed when the cluster stops)");
        return elsewhere;
    }

    /// <summary>A process of the cluster; a controller's <see cref="Address"/> is its API URL.</summary>
    private sealed record Child(string Name, Process Process, string Log, string[] Args, string? Address = null, string? FaultDomain = null)
    {
        public bool IsAgent => Args[0] == "agent";

        public bool IsController => Args[0] == "controller";

        public string? AgentUrl { get; init; }

        /// <summary>Where it serves /metrics (agents, DNS, the balancer; the controllers on their API port, with a token).</summary>
        public string? Metrics { get; init; }
    }

    /// <summary>Starts a controller and waits until it says where it listens.</summary>
    private static async Task<Child> StartControllerAsync(string name, string state, string logs, TimeSpan nodeTimeout, string[] store, List<Child> children, CancellationToken ct)
    {
        if (File.Exists(Path.Combine(state, ControllerCommand.EndpointsFile)))
        {
            File.Delete(Path.Combine(state, ControllerCommand.EndpointsFile));
        }

        var child = Start(name, Path.Combine(logs, $"{name}.log"), ["controller", "--state", state, "--node-timeout", Durations.Format(nodeTimeout), "--no-dns", "--no-lb", .. UidRangeArgs, .. store]);
        children.Add(child);
        var endpoints = await WaitForEndpointsAsync(child, Path.Combine(state, ControllerCommand.EndpointsFile), ct);
        child = child with { Address = endpoints.ApiUrl.ToString(), AgentUrl = endpoints.AgentUrl.ToString() };
        children[children.IndexOf(children.First(c => c.Name == name))] = child;
        return child;
    }

    /// <summary>
    /// Until Ctrl-C or SIGTERM: any process of the cluster that dies (the controller killed with -9, an agent that
    /// crashed) is started again the same way, with a backoff that grows while it keeps dying (1 s doubling to 30 s).
    /// </summary>
    private static async Task SuperviseAsync(CliConsole console, List<Child> children, Action processesChanged, CancellationToken ct)
    {
        var deaths = new Dictionary<string, (int Count, DateTimeOffset Last, DateTimeOffset NextStart)>();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(200, ct);
                var now = DateTimeOffset.UtcNow;
                for (var i = 0; i < children.Count; i++)
                {
                    var child = children[i];
                    if (!child.Process.HasExited)
                    {
                        continue;
                    }

                    if (!deaths.TryGetValue(child.Name, out var death) || death.Last < child.Process.ExitTime.ToUniversalTime())
                    {
                        var count = death.Count > 0 && now - death.Last < TimeSpan.FromMinutes(1) ? death.Count + 1 : 1;
                        var delay = TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, count - 1)));
                        death = deaths[child.Name] = (count, now, count == 1 ? now : now + delay);
                        console.Out.WriteLine($"{child.Name} (pid {child.Process.Id}) exited with code {child.Process.ExitCode}; starting it again{(count == 1 ? string.Empty : $" in {delay.TotalSeconds:0} s")} (see {child.Log})");
                    }

                    if (now < death.NextStart)
                    {
                        continue;
                    }

                    children[i] = Start(child.Name, child.Log, child.Args) with { Args = child.Args, Address = child.Address, AgentUrl = child.AgentUrl, Metrics = child.Metrics };
                    deaths[child.Name] = death with { Last = now, NextStart = DateTimeOffset.MaxValue };
                    processesChanged();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static Child Start(string name, string log, string[] args)
    {
        // Through sh so the child's output goes straight to its log file: the child does not depend on `up` to read it.
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec \"$@\" >>\"$HEDDLE_UP_LOG\" 2>&1 </dev/null");
        start.ArgumentList.Add("heddle");
        foreach (var part in SelfCommand().Concat(args))
        {
            start.ArgumentList.Add(part);
        }

        start.Environment["HEDDLE_UP_LOG"] = log;
        if (args[0] == "agent" && JoinString is { } join)
        {
            start.Environment[AgentCommand.JoinVariable] = join; // never on a command line, where every process could read it
        }

        if (args[0] is "dns" or "lb" && DataPlaneToken is { } token)
        {
            start.Environment[ClientConfig.TokenVariable] = token;
        }
        var process = Process.Start(start) ?? throw new CliException($"could not start {name}");
        var address = args.SkipWhile(a => a != "--address").Skip(1).FirstOrDefault();
        var faultDomain = args.SkipWhile(a => a != "--fault-domain").Skip(1).FirstOrDefault();
        return new Child(name, process, log, args, address, faultDomain);
    }

    /// <summary>
    /// This same heddle: the apphost (the single-file executable included), or `dotnet heddle.dll` when run that way.
    /// The dll is found beside the app, not by Assembly.Location, which is empty inside a single-file executable.
    /// </summary>
    private static IEnumerable<string> SelfCommand()
    {
        var self = Environment.ProcessPath!;
        return Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? [self, Path.Combine(AppContext.BaseDirectory, typeof(UpCommand).Assembly.GetName().Name + ".dll")]
            : [self];
    }

    private static async Task<ControllerEndpoints> WaitForEndpointsAsync(Child controller, string file, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (controller.Process.HasExited)
            {
                throw new CliException($"the controller exited with code {controller.Process.ExitCode}; its log {controller.Log} ends with:\n{Tail(controller.Log)}");
            }

            if (StateFiles.Read<ControllerEndpoints>(file) is { } endpoints && endpoints.Pid == controller.Process.Id)
            {
                return endpoints;
            }

            await Task.Delay(50, ct);
        }

        throw new CliException($"the controller did not start within 60 s; see {controller.Log}");
    }

    /// <summary>Where the DNS server answers, once it follows the controller (the controller's info says).</summary>
    private static async Task<string> WaitForDnsAsync(HeddleApiClient api, List<Child> children, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (children.FirstOrDefault(c => c.Process.HasExited) is { } dead)
            {
                throw new CliException($"{dead.Name} exited with code {dead.Process.ExitCode}; its log {dead.Log} ends with:\n{Tail(dead.Log)}");
            }

            if ((await api.InfoAsync(ct)).DnsAddress is { } address)
            {
                return address;
            }

            await Task.Delay(50, ct);
        }

        throw new CliException($"the DNS server did not start within 60 s; see {children.First(c => c.Name == "dns").Log}");
    }

    private static async Task WaitForNodesAsync(HeddleApiClient api, List<Child> children, int count, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (children.FirstOrDefault(c => c.Process.HasExited) is { } dead)
            {
                throw new CliException($"{dead.Name} exited with code {dead.Process.ExitCode}; its log {dead.Log} ends with:\n{Tail(dead.Log)}");
            }

            if ((await api.ListNodesAsync(ct)).Count(n => n.Condition == "Ready") == count)
            {
                return;
            }

            await Task.Delay(100, ct);
        }

        throw new CliException($"not every node joined within 60 s; see the logs in {Path.GetDirectoryName(children[0].Log)}");
    }

    private static void WriteUpFile(string path, string root, Uri apiUrl, string agentUrl, string? dnsAddress, List<Child> children, LocalEtcd? etcd, EtcdTlsFiles? etcdClient) =>
        StateFiles.Write(path, new UpState(Environment.ProcessId, root, apiUrl, agentUrl, dnsAddress,
            [.. children.Select(c => new UpProcess(c.Name, c.Process.Id, c.Address, c.FaultDomain, c.Log, c.IsController ? new Uri(new Uri(c.Address!), "/metrics").ToString() : c.Metrics))],
            etcd is null ? null : new UpEtcd(etcd.StoreOption, etcd.Pids, etcd.DataDirectory, etcdClient?.CaFile, etcdClient?.CertificateFile, etcdClient?.KeyFile)));

    private static void Report(CliConsole console, string root, Uri apiUrl, string? dnsAddress, List<Child> children, int count, int cores, int threads, int memory)
    {
        console.Out.WriteLine($"heddle up {Environment.ProcessId}: a cluster of {count} node(s), API {apiUrl}, state {root}");
        if (dnsAddress is not null)
        {
            var endpoint = System.Net.IPEndPoint.Parse(dnsAddress);
            console.Out.WriteLine($"DNS: zone heddle.internal on {dnsAddress}; try: dig @{endpoint.Address} -p {endpoint.Port} hello.heddle.internal");
        }

        var table = new Table("PROCESS", "PID", "ADDRESS", "FAULT DOMAIN", "METRICS", "LOG");
        children.ForEach(c => table.Add(c.Name, c.Process.Id, c.Address, c.FaultDomain, c.IsController ? "(API, with a token)" : c.Metrics, c.Log));
        table.Write(console.Out);
        var claimed = count * cores * threads;
        if (claimed > Environment.ProcessorCount)
        {
            console.Out.WriteLine($"note: the nodes claim {claimed} CPUs ({count} × {cores} cores × {threads} threads) but this machine has {Environment.ProcessorCount}; instances are pinned to node CPUs mapped onto the real ones round-robin, so instances of different nodes share real CPUs");
        }

        console.Out.WriteLine($"each node claims {memory} MiB of this machine's memory");
        console.Out.WriteLine($"client configuration: {ClientConfig.FilePath}; processes: {Path.Combine(ClientConfig.Home, UpFile)}");
        console.Out.WriteLine("try: heddle deploy artifacts/hello.hpkg --config samples/hello/hello.config.yaml --wait; heddle status hello");
        console.Out.WriteLine("Ctrl-C stops the cluster and everything it runs.");
    }

    private static async Task StopAsync(List<Child> children)
    {
        // Agents first, so they stop their instances while the controller still listens; then the controller; then DNS and
        // the load balancer, which serve until the end.
        foreach (var group in new[] { children.Where(c => c.IsAgent).ToList(), children.Where(c => c.IsController).ToList(), children.Where(c => !c.IsAgent && !c.IsController).ToList() })
        {
            foreach (var child in group.Where(c => !c.Process.HasExited))
            {
                Posix.Signal(child.Process.Id, Posix.SIGTERM);
            }

            foreach (var child in group)
            {
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await child.Process.WaitForExitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    child.Process.Kill(entireProcessTree: true);
                    await child.Process.WaitForExitAsync();
                }
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            return !Process.GetProcessById(pid).HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static string Tail(string log) => File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(15)) : "(no log)";
}
