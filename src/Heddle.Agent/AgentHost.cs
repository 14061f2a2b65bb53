using Heddle.Agent.Connection;
using Heddle.Agent.Drivers;
using Heddle.Agent.Instances;
using Heddle.Agent.Isolation;
using Heddle.Agent.Logs;
using Heddle.Agent.Metrics;
using Heddle.Agent.Node;
using Heddle.Agent.Packages;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Metrics;
using Heddle.Model.Definition;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heddle.Agent;

/// <summary>
/// A running agent: reports its node, keeps the controller stream open, runs the instances of its goal state,
/// rotates their logs and serves them. Stopping the agent leaves its instances running (a new agent adopts them)
/// unless asked to stop them too.
/// </summary>
public sealed class AgentHost : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _connection;
    private readonly Task _rotation;
    private readonly Task _fencing;
    private readonly Fencing _fence;
    private readonly Task _renewal;
    private readonly ILogger _log;
    private readonly ILogEndpoint _logs;
    private readonly HttpClient _downloads;
    private readonly HttpClient _probes;
    private readonly TimeProvider _time;
    private MeterScope _meters = null!;
    private MetricsListener? _metricsListener;

    private AgentHost(AgentOptions options, InstanceSupervisor supervisor, ControllerConnection connection, ILogEndpoint logs, HttpClient downloads, HttpClient probes,
        NodeTopology topology, IReadOnlyList<IInstanceDriver> drivers, NodeIdentity identity, ILogger log, TimeProvider time, bool housekeeping)
    {
        _log = log;
        _time = time;
        Identity = identity;
        Options = options;
        Supervisor = supervisor;
        Connection = connection;
        _logs = logs;
        _downloads = downloads;
        _probes = probes;
        Topology = topology;
        Drivers = drivers;
        var reboot = new Node.HostReboot(supervisor, supervisor.StopAllAsync, options.HostImage, options.Rebooter, connection.Send, log);
        _connection = connection.RunAsync(reboot, _stop.Token);
        _renewal = Task.Run(() => identity.RenewAsync(() => connection.Client, _log, _stop.Token));
        _rotation = housekeeping ? RotateLogsAsync(_stop.Token) : Task.CompletedTask;
        _fence = new Fencing(options.FenceAfter, time, () => connection.SilentSince, () => supervisor.Count, () => supervisor.FenceAsync(TimeSpan.FromSeconds(1)), connection.Reconnect, _log);
        _fencing = _fence.RunAsync(_stop.Token);
    }

    /// <summary>True while this agent has stopped its instances for want of the controller (until it hears from it again).</summary>
    public bool Fenced => _fence.Fenced;

    public AgentOptions Options { get; }

    /// <summary>This node's certificate and the cluster CA.</summary>
    public NodeIdentity Identity { get; }

    public InstanceSupervisor Supervisor { get; }

    public ControllerConnection Connection { get; }

    public NodeTopology Topology { get; }

    public IReadOnlyList<IInstanceDriver> Drivers { get; }

    /// <summary>How this node's instances are isolated, in words: `heddle nodes` and the agent's log say it plainly.</summary>
    public string Isolation { get; private init; } = string.Empty;

    /// <summary>Why this node cannot run containers, or null when it can.</summary>
    public string? ContainerUnavailable { get; private init; }

    public Uri LogUrl => _logs.Url;

    /// <summary>Where this agent serves <c>/metrics</c>; null unless <see cref="AgentOptions.Metrics"/> asked for it.</summary>
    public Uri? MetricsUrl => _metricsListener?.Url;

    /// <summary>When set, disposing the agent stops its instances too (`heddle up` teardown, tests).</summary>
    public bool StopInstancesOnExit { get; set; }

    public static Task<AgentHost> StartAsync(AgentOptions options, ILoggerFactory? loggers = null, TimeProvider? time = null, CancellationToken cancellationToken = default) =>
        StartAsync(options, NodeMachine.Host, loggers, time, cancellationToken);

    /// <summary>
    /// Starts an agent on <paramref name="machine"/>: the real host, or a hollow node of `heddle hollow`. Its every wait,
    /// timer and time read (connection, fencing, identity, instances, housekeeping) runs on <paramref name="time"/>, the
    /// system clock unless a test passes a fake one.
    /// </summary>
    public static async Task<AgentHost> StartAsync(AgentOptions options, NodeMachine machine, ILoggerFactory? loggers = null, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        loggers ??= NullLoggerFactory.Instance;
        time ??= TimeProvider.System;
        var isolated = machine.Isolated;
        if (isolated)
        {
            PrepareIsolatedState(options);
        }
        else
        {
            Directory.CreateDirectory(options.StateDirectory);
        }

        if (machine.ChecksHostPrograms && HostPrograms.Missing(Posix.IsRoot) is { Count: > 0 } missing)
        {
            throw new InvalidOperationException($"this host lacks {string.Join(", ", missing)}, which the agent runs to start instances (apt-get install util-linux mount dash)");
        }

        if (isolated && InstanceDisk.Unavailable() is { } noDisks)
        {
            throw new InvalidOperationException($"instances cannot be given disks of their own here: {noDisks}");
        }

        // The log server listens before the node enrols: the controller connects to it to check that it reaches the node
        // at its address, and refuses a node it cannot reach.
        NodeIdentity? identity = null;
        InstanceSupervisor? supervisor = null;
        var metricsAt = options.Metrics.Endpoint();
        var logs = await machine.Logs(options, () => identity, () => supervisor, cancellationToken);
        var meters = new MeterScope();
        MetricsListener? listener = null;
        try
        {
            var metrics = new AgentMetrics(meters);
            listener = metricsAt is null ? null : await MetricsListener.StartAsync(metricsAt, meters, cancellationToken);
            var host = await StartAsync(options, machine, loggers, time, logs, isolated, metrics, id => identity = id, s => supervisor = s, cancellationToken);
            host._meters = meters;
            host._metricsListener = listener;
            return host;
        }
        catch
        {
            if (listener is not null)
            {
                await listener.DisposeAsync();
            }

            meters.Dispose();
            await logs.DisposeAsync();
            throw;
        }
    }

    private static async Task<AgentHost> StartAsync(AgentOptions options, NodeMachine machine, ILoggerFactory loggers, TimeProvider time, ILogEndpoint logs, bool isolated, AgentMetrics metrics,
        Action<NodeIdentity> identified, Action<InstanceSupervisor> supervising, CancellationToken cancellationToken)
    {
        var identity = await NodeIdentity.LoadOrEnrolAsync(options, logs.Url.Port, time, loggers.CreateLogger<NodeIdentity>(), cancellationToken);
        identified(identity);
        // The cluster, as far as uids go, is its CA: agents of one cluster on a host share a service's uid, another cluster's may not.
        var uids = isolated ? new UidClaims(options.UidRange, Convert.ToHexStringLower(identity.Ca.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256))[..16]) : null;
        var topology = machine.Topology(options);
        var (drivers, unavailable, driverIsolation) = machine.Drivers(options, time);
        var containerUnavailable = unavailable.GetValueOrDefault(DriverNames.Container);
        // Packages and images come from the agent port, over mutual TLS: the controller hands a node only what its goal state
        // names. They are fetched from the controller the agent talks to now.
        ControllerConnection? current = null;
        var downloads = new HttpClient(new CurrentController(() => current?.Current ?? options.ControllerAgentUrl)
        {
            InnerHandler = Heddle.Contracts.Trust.ClusterTrust.Handler(identity.Ca, () => identity.Certificate),
        })
        {
            BaseAddress = options.ControllerAgentUrl, Timeout = TimeSpan.FromMinutes(30),
            DefaultRequestVersion = System.Net.HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var probes = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(1), UseProxy = false }) { Timeout = Timeout.InfiniteTimeSpan };
        var context = new AgentContext
        {
            Log = loggers.CreateLogger<InstanceSupervisor>(),
            Options = options,
            Topology = topology,
            Packages = machine.Packages(options, downloads),
            Drivers = drivers,
            DriverUnavailable = unavailable,
            Images = new ImageCache(Path.Combine(options.StateDirectory, "images"), downloads),
            Ports = new PortAllocator(options.Address, options.PortRangeStart, options.PortRangeEnd),
            Probes = machine.Probes,
            ProbeClient = probes,
            Time = time,
            Metrics = metrics,
            Uids = uids,
        };

        var node = new NodeInfo
        {
            Name = options.NodeName,
            Address = options.Address,
            FaultDomain = options.FaultDomain,
            MemoryMib = options.ClaimMemoryMiB ?? NodeMemoryInfo.TotalMiB(),
            HostImage = options.HostImage ?? string.Empty,
        };
        node.Labels.Add(options.Labels.ToDictionary());
        foreach (var core in topology.Cores)
        {
            var message = new CpuCore();
            message.Cpus.AddRange(core);
            node.Cores.Add(message);
        }

        var connection = current = new ControllerConnection(options, node, identity, loggers.CreateLogger<ControllerConnection>(), time, metrics);
        var supervisor = new InstanceSupervisor(context, new InstanceJournal(Path.Combine(options.StateDirectory, "instances.json")), connection.Report);
        metrics.Observe(supervisor.Reports);
        supervising(supervisor);
        node.LogUrl = logs.Url.ToString();
        var isolation = machine.Isolation ?? (uids is null
            ? $"NOT ISOLATED: the agent is not root, so instances run as its own user and can reach everything it can ({driverIsolation})"
            : $"a uid per service ({options.UidRange}), no capabilities, environment from nothing, a disk, /tmp, /dev/shm and /proc of its own, {driverIsolation}");
        node.Isolation = isolation;
        node.Drivers.AddRange(drivers.Keys.Order(StringComparer.Ordinal));
        if (containerUnavailable is not null)
        {
            loggers.CreateLogger<AgentHost>().LogWarning("The container driver is unavailable on this node: {Reason}; container roles are not placed here", containerUnavailable);
        }

        return new AgentHost(options, supervisor, connection, logs, downloads, probes, topology, [.. drivers.Values], identity, loggers.CreateLogger<AgentHost>(), time, machine.Housekeeping)
        {
            Isolation = isolation, ContainerUnavailable = containerUnavailable,
        };
    }

    /// <summary>
    /// As root: the state folder can be passed through (instances, as their own uids, must reach their folders below it)
    /// but not listed; the package cache is the agent's alone. Refuses a state folder under one that other users cannot
    /// pass through, since its instances could not even start there.
    /// </summary>
    private static void PrepareIsolatedState(AgentOptions options)
    {
        if (StateFolders.Blocking(options.StateDirectory) is { } blocking)
        {
            throw new InvalidOperationException(
                $"instances run as uids of their own and must reach their folders in {options.StateDirectory}, but {blocking} lets no other user through "
                + $"(mode {Convert.ToString((int)File.GetUnixFileMode(blocking), 8)}); choose a --state under a folder every user can pass through (such as /var/lib/heddle), or run 'chmod o+x {blocking}'");
        }

        var full = Path.GetFullPath(options.StateDirectory).TrimEnd('/') + "/";
        if (new[] { "/tmp/", "/dev/shm/" }.FirstOrDefault(p => full.StartsWith(p, StringComparison.Ordinal)) is { } hidden)
        {
            throw new InvalidOperationException(
                $"the state folder {options.StateDirectory} is below {hidden.TrimEnd('/')}, which every instance sees as a private one of its own, so its folder would be hidden from it; "
                + "choose a --state elsewhere (such as /var/lib/heddle)");
        }

        StateFolders.Create(options.StateDirectory, StateFolders.PassThrough);
        StateFolders.Create(Path.Combine(options.StateDirectory, "instances"), StateFolders.PassThrough);
        StateFolders.Create(Path.Combine(options.StateDirectory, "cache"), StateFolders.Private);
    }

    private async Task RotateLogsAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2), _time);
        var lastSweep = DateTimeOffset.MinValue;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var now = _time.GetUtcNow();
                if (now - lastSweep >= TimeSpan.FromMinutes(1))
                {
                    lastSweep = now;
                    InstanceFolders.Sweep(Path.Combine(Options.StateDirectory, "instances"), Supervisor.KnownDirectories(), Options.LogRetention, lastSweep);
                }

                Supervisor.ReportDiskUse();
                foreach (var directory in Supervisor.RunningDirectories())
                {
                    foreach (var name in new[] { "stdout.log", "stderr.log" })
                    {
                        try
                        {
                            LogRotation.RotateIfLarge(Path.Combine(directory, "logs", name), Options.LogFileMaxBytes, Options.LogFilesKept);
                        }
                        catch (IOException)
                        {
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _connection;
        await _rotation;
        await _fencing;
        await _renewal;
        if (StopInstancesOnExit)
        {
            await Supervisor.StopAllAsync();
            foreach (var driver in Drivers)
            {
                driver.ReleaseHost();
            }

            InstanceDisk.RemoveAllUnder(Options.StateDirectory);
            if (Supervisor.Context.Uids?.ReleaseUnused() is { Count: > 0 } released)
            {
                UserNamespaces.Release(released);
            }
        }
        else
        {
            await Supervisor.DetachAllAsync();
        }

        await _logs.DisposeAsync();
        if (_metricsListener is not null)
        {
            await _metricsListener.DisposeAsync();
        }

        _meters.Dispose();
        _downloads.Dispose();
        _probes.Dispose();
    }
}
