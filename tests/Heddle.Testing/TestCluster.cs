using Heddle.Agent;
using Heddle.Contracts.Api;
using Heddle.Controller;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Testing;

/// <summary>
/// A controller and N agents in this process, on loopback, with real sockets and a real SQLite file. Agent i runs
/// as node n{i+1} at address 127.0.K.{i+1} in fault domain fd{i+1}, K chosen per cluster (never 1, which `heddle up`
/// uses) so that clusters of test processes running at once never compete for a port. Disposing stops every
/// instance it started.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly TempDirectory _directory;
    private readonly ControllerOptions _controllerOptions;

    public ControllerOptions ControllerOptions => _controllerOptions;
    private readonly int _coresPerNode;
    private readonly int _subnet = 2 + Random.Shared.Next(250);

    private TestCluster(TempDirectory directory, ControllerOptions options, int coresPerNode)
    {
        _directory = directory;
        _controllerOptions = options;
        _coresPerNode = coresPerNode;
    }

    public ControllerHost Controller { get; private set; } = null!;

    public List<AgentHost?> Agents { get; } = [];

    /// <summary>What every agent of the cluster logged (Information and above), each line naming its node.</summary>
    public LogCapture AgentLogs { get; } = new();

    /// <summary>What the controllers logged (warnings and above, and who leads), each line naming the controller's API port.</summary>
    public LogCapture ControllerLogs { get; } = new();

    private Task<ControllerHost> StartControllerHostAsync(ControllerOptions options) =>
        ControllerHost.StartAsync(options, logging: b => ControllerLogs.AddTo(b, $"controller:{options.ApiPort}"));

    public HeddleApiClient Api { get; private set; } = null!;

    public string StateDirectory => _directory.Path;

    /// <summary>With <paramref name="cuttable"/>, each agent reaches the controller through a <see cref="LinkCutter"/> of its own (<see cref="Links"/>).</summary>
    /// <param name="agentMetrics">Each agent serves /metrics on a port of its own (<see cref="AgentHost.MetricsUrl"/>).</param>
    /// <param name="controllers">More than one needs a store they share (configure one, as etcd://...): controller k keeps its state in controller-k,
    /// and agent i talks to controller i mod N first and knows every other.</param>
    public static async Task<TestCluster> StartAsync(int nodes = 3, TimeSpan? nodeTimeout = null, int coresPerNode = 2, bool containers = true, bool cuttable = false,
        Func<ControllerOptions, ControllerOptions>? configure = null, int controllers = 1, bool agentMetrics = false)
    {
        var directory = new TempDirectory("heddle-cluster-");
        // Instances run as uids of their own (as root) and must pass through this folder to reach theirs.
        File.SetUnixFileMode(directory.Path, Heddle.Agent.Isolation.StateFolders.PassThrough);
        // A block of uids of its own: test clusters running at once never give two services the same uid.
        var uids = Heddle.Agent.Isolation.UidBlock.Lease();
        var options = new ControllerOptions
        {
            UidRange = uids.Range,
            StateDirectory = Path.Combine(directory.Path, "controller"),
            NodeTimeout = nodeTimeout ?? TimeSpan.FromSeconds(3),
            ResyncInterval = TimeSpan.FromSeconds(2),
        };
        options = configure?.Invoke(options) ?? options;
        var cluster = new TestCluster(directory, options, coresPerNode) { _containers = containers, _uids = uids, _agentMetrics = agentMetrics };
        cluster.Controller = await cluster.StartOffEphemeralPortsAsync(options);
        cluster.Controllers.Add(cluster.Controller);
        for (var k = 1; k < controllers; k++)
        {
            // The store keeps only the CA's certificate: every other controller is given the CA's files, as an operator would.
            CopyCa(options.StateDirectory, Path.Combine(directory.Path, $"controller-{k}"));
            cluster.Controllers.Add(await cluster.StartOffEphemeralPortsAsync(options with { StateDirectory = Path.Combine(directory.Path, $"controller-{k}") }));
        }

        cluster._agentUrls.AddRange(cluster.Controllers.Select(c => c!.AgentUrl));
        cluster._apiPorts.AddRange(cluster.Controllers.Select(c => c!.ApiUrl.Port));

        cluster.Api = new HeddleApiClient(cluster.Controller.ApiUrl, cluster.Controller.ApiToken, cluster.Controller.CaCertificate);
        cluster.JoinString = await cluster.Controller.CreateJoinStringAsync(TimeSpan.FromHours(2));
        if (cuttable)
        {
            var datagrams = cluster.Controller.Services.GetRequiredService<Heddle.Controller.Agents.HeartbeatDatagrams>().EndPoint?.Port;
            cluster.Links.AddRange(Enumerable.Range(0, nodes).Select(_ => new LinkCutter(cluster.Controller.AgentUrl, datagrams)));
        }

        for (var i = 0; i < nodes; i++)
        {
            cluster.Agents.Add(null);
            await cluster.StartAgentAsync(i);
        }

        await Poll.UntilAsync(() => cluster.Api.ListNodesAsync(), n => n.Count(x => x.Condition == "Ready") == nodes, TimeSpan.FromSeconds(20), $"{nodes} nodes Ready");
        return cluster;
    }

    /// <summary>Copies the cluster CA (ca.crt, ca.key) from one controller's state folder into another's, as the operator of controllers sharing a store does.</summary>
    public static void CopyCa(string fromStateDirectory, string toStateDirectory)
    {
        Directory.CreateDirectory(toStateDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Heddle.Contracts.Trust.PrivateFile.Write(Path.Combine(toStateDirectory, "ca.key"), File.ReadAllText(Path.Combine(fromStateDirectory, "ca.key")));
        File.Copy(Path.Combine(fromStateDirectory, "ca.crt"), Path.Combine(toStateDirectory, "ca.crt"), overwrite: true);
    }

    public static string NodeName(int i) => $"n{i + 1}";

    /// <summary>The join string the cluster's agents enrol with (any number of them, for two hours).</summary>
    public string JoinString { get; private set; } = string.Empty;

    public string NodeAddress(int i) => $"127.0.{_subnet}.{i + 1}";

    /// <summary>The link of each agent to the controller, when the cluster was started cuttable.</summary>
    public List<LinkCutter> Links { get; } = [];

    private readonly List<Uri> _agentUrls = [];

    /// <summary>Every controller started, the first being <see cref="Controller"/>; a stopped one is null.</summary>
    public List<ControllerHost?> Controllers { get; } = [];

    /// <summary>
    /// Stops controller k (gracefully: it gives up leadership at once) and leaves the others running. Its slot turns null
    /// once it has stopped, so a test waiting for that can start it again on its ports (CI once started it while the old
    /// one still held them).
    /// </summary>
    public async Task StopControllerAsync(int k)
    {
        if (Controllers[k] is { } controller)
        {
            await controller.DisposeAsync();
            Controllers[k] = null;
        }
    }

    /// <summary>Starts controller k again (after <see cref="StopControllerAsync"/>) on its state folder and the ports the agents know.</summary>
    public async Task StartControllerAsync(int k)
    {
        if (Controllers[k] is not null)
        {
            return;
        }

        var agent = _agentUrls[k];
        var api = _apiPorts[k];
        Controllers[k] = await StartOnItsPortsAsync(_controllerOptions with
        {
            StateDirectory = k == 0 ? _controllerOptions.StateDirectory : Path.Combine(_directory.Path, $"controller-{k}"),
            ApiPort = api,
            AgentPort = agent.Port,
        });
        if (k == 0)
        {
            Controller = Controllers[0]!;
        }
    }

    private readonly List<int> _apiPorts = [];

    public AgentOptions AgentOptions(int i) => new()
    {
        ControllerAgentUrl = i < Links.Count ? Links[i].Url : _agentUrls.Count > 1 ? _agentUrls[i % _agentUrls.Count] : Controller.AgentUrl,
        OtherControllerUrls = _agentUrls.Count > 1 ? [.. _agentUrls.Where((_, k) => k != i % _agentUrls.Count)] : [],
        Join = JoinString,
        NodeName = NodeName(i),
        Address = NodeAddress(i),
        FaultDomain = $"fd{i + 1}",
        StateDirectory = Path.Combine(StateDirectory, "agents", NodeName(i)),
        ClaimCores = _coresPerNode,
        ClaimMemoryMiB = 8192,
        HeartbeatInterval = TimeSpan.FromMilliseconds(250),
        StopGracePeriod = TimeSpan.FromSeconds(3),
        RestartBackoff = TimeSpan.FromMilliseconds(100),
        UseContainers = _containers,
        FenceAfter = _controllerOptions.NodeTimeout,
        UidRange = _controllerOptions.UidRange,
        Metrics = _agentMetrics ? new Heddle.Contracts.Metrics.MetricsListenerOptions(0) : Heddle.Contracts.Metrics.MetricsListenerOptions.Off,
    };

    private bool _containers = true;
    private bool _agentMetrics;
    private Heddle.Agent.Isolation.UidBlock? _uids;

    public async Task StartAgentAsync(int i)
    {
        var agent = await AgentHost.StartAsync(AgentOptions(i), AgentLogs.For(NodeName(i)));
        agent.StopInstancesOnExit = true;
        Agents[i] = agent;
    }

    /// <summary>Stops agent i. With <paramref name="stopInstances"/> false its instances keep running (an agent crash or update).</summary>
    public async Task StopAgentAsync(int i, bool stopInstances)
    {
        var agent = Agents[i] ?? throw new InvalidOperationException($"agent {i} is not running");
        agent.StopInstancesOnExit = stopInstances;
        await agent.DisposeAsync();
        Agents[i] = null;
    }

    /// <summary>Stops the controller and starts it again on the same ports and state directory.</summary>
    public async Task RestartControllerAsync()
    {
        var options = _controllerOptions with { ApiPort = Controller.ApiUrl.Port, AgentPort = Controller.AgentUrl.Port };
        await Controller.DisposeAsync();
        Controller = await StartOnItsPortsAsync(options);
        Controllers[0] = Controller;
    }

    /// <summary>
    /// Starts a controller on two ports from 30000-32767, picked at random (another pair on a clash): above the agents'
    /// instance ports (20000-29999) and below the kernel's ephemeral range (32768-60999), from which every outgoing
    /// connection takes its local port. A controller restarted on ports of the ephemeral range could find one held for
    /// the whole test by some client's long-lived connection (seen in CI: 15 s of "address in use"). The pair stays
    /// reserved in this process until the cluster is disposed, so another test's controller never takes a port that a
    /// stopped controller of this cluster will start on again (seen in CI too, once ports were random).
    /// Options that name their ports are started on them.
    /// </summary>
    private async Task<ControllerHost> StartOffEphemeralPortsAsync(ControllerOptions options)
    {
        if (options.ApiPort != 0 || options.AgentPort != 0)
        {
            return await StartControllerHostAsync(options);
        }

        for (var attempt = 1; ; attempt++)
        {
            var api = ReservedPorts.Take();
            var agent = ReservedPorts.Take();
            try
            {
                var host = await StartControllerHostAsync(options with { ApiPort = api, AgentPort = agent });
                _reservedPorts.Add(api);
                _reservedPorts.Add(agent);
                return host;
            }
            catch (IOException e) when (e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException && attempt < 50)
            {
                // taken by another process: another pair
                ReservedPorts.Release(api);
                ReservedPorts.Release(agent);
            }
        }
    }

    private readonly List<int> _reservedPorts = [];

    /// <summary>
    /// Starts a controller on the ports its agents and clients know. Another socket of the machine (a client's outgoing
    /// connection, under load) may hold one of them for a moment after the old controller let it go: retried on that
    /// clash for up to 15 s, as an operator would restart it.
    /// </summary>
    private async Task<ControllerHost> StartOnItsPortsAsync(ControllerOptions options)
    {
        Exception? inUse = null;
        try
        {
            var started = await Poll.UntilAsync(async () =>
            {
                try
                {
                    return await StartControllerHostAsync(options);
                }
                catch (IOException e) when (e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
                {
                    inUse = e;
                    return null;
                }
            }, host => host is not null, TimeSpan.FromSeconds(15), $"the controller to start on its ports {options.ApiPort} and {options.AgentPort}", TimeSpan.FromMilliseconds(250));
            return started!;
        }
        catch (TimeoutException e)
        {
            // Say who holds the ports, for the next time this happens.
            var holders = ProcessRunner.Run("ss", ["-tanpe", $"( sport = :{options.ApiPort} or sport = :{options.AgentPort} )"], TimeSpan.FromSeconds(10));
            throw new TimeoutException($"{e.Message}; the last refusal: {inUse}\nsockets on those ports:\n{holders.Stdout}", e);
        }
    }

    public async Task<ServiceStatus> DeploySampleAsync(string? configuration = null)
    {
        var upload = await Api.UploadPackageAsync(SamplePackage.File);
        await Api.DeployAsync(new DeploymentRequest(upload.Sha256, configuration ?? File.ReadAllText(SamplePackage.ConfigurationPath), "hello.config.yaml"));
        return await Api.GetServiceAsync("hello");
    }

    public async Task<ServiceStatus> WaitUntilReadyAsync(string service, int instances, TimeSpan deadline)
    {
        ServiceStatus? last = null;
        try
        {
            return await Poll.UntilAsync(async () => last = await Api.GetServiceAsync(service),
                s => s.Instances.Count == instances && s.Instances.All(i => i.State == InstanceStates.Ready),
                deadline, $"{instances} instances of {service} Ready",
                TimeSpan.FromMilliseconds(100));
        }
        catch (TimeoutException e) when (last is not null)
        {
            throw new TimeoutException($"{e.Message}; instances: {string.Join("; ", last.Instances.Select(i => $"{i.Id} {i.State} on {i.Node}: {i.Reason}"))}", e);
        }
    }

    /// <summary>The pids of this cluster's instance processes: those whose working directory is under its state.</summary>
    public List<int> InstanceProcesses()
    {
        var result = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                var cwd = new DirectoryInfo(Path.Combine(dir, "cwd")).LinkTarget;
                if (cwd is not null && cwd.StartsWith(StateDirectory + "/", StringComparison.Ordinal) && !File.ReadAllText(Path.Combine(dir, "stat")).Contains(") Z "))
                {
                    result.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return result;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var agent in Agents.OfType<AgentHost>())
        {
            agent.StopInstancesOnExit = true;
            await agent.DisposeAsync();
        }

        // Instances deliberately outlive an agent stopped without stopping them: sweep what every node's journal names.
        for (var i = 0; i < Agents.Count; i++)
        {
            Heddle.Agent.Instances.LeftoverInstances.Stop(AgentOptions(i).StateDirectory, NodeName(i));
        }

        foreach (var link in Links)
        {
            await link.DisposeAsync();
        }

        Api?.Dispose();
        foreach (var controller in Controllers.OfType<ControllerHost>().Append(Controller).Distinct())
        {
            await controller.DisposeAsync();
        }

        _directory.Dispose();
        _uids?.Dispose();
        foreach (var port in _reservedPorts)
        {
            ReservedPorts.Release(port);
        }
    }
}
