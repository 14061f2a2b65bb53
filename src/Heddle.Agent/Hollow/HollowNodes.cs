using Heddle.Contracts.Timing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heddle.Agent.Hollow;

/// <summary>
/// N hollow nodes in this process (`heddle hollow`): each a real <see cref="AgentHost"/> — enrolment with its own key
/// and certificate, its own Connect stream with Hello, heartbeats, goal states and reports, its own supervisor and
/// instance runners — on a <see cref="HollowMachine"/>, so that nothing is started for their instances.
/// </summary>
public sealed class HollowNodes : IAsyncDisposable
{
    private readonly HollowOptions _options;
    private readonly AgentHost?[] _agents;
    private readonly ReachabilityListener?[] _listeners;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _closing;
    private SharedClock? _clock; // the one made here when no clock was given: stopped last

    private HollowNodes(HollowOptions options)
    {
        _options = options;
        _agents = new AgentHost?[options.Nodes];
        _listeners = new ReachabilityListener?[options.Nodes];
        Packages = new HollowPackages(Path.Combine(options.StateDirectory, "cache"));
        _closing = CloseListenersAsync(_stop.Token);
    }

    public HollowOptions Options => _options;

    public HollowPackages Packages { get; }

    /// <summary>Node i's agent, or null once it was dropped.</summary>
    public AgentHost? Agent(int i) => _agents[i];

    /// <summary>
    /// Enrols and connects every node, <see cref="HollowOptions.StartConcurrency"/> at a time, and returns once each has
    /// its certificate and has started its stream. Throws, naming the node, when one cannot (every node started is stopped).
    /// </summary>
    public static async Task<HollowNodes> StartAsync(HollowOptions options, ILoggerFactory? loggers = null, TimeProvider? time = null, Action<int>? started = null,
        CancellationToken cancellationToken = default)
    {
        if (options.Problem() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        loggers ??= NullLoggerFactory.Instance;
        var nodes = new HollowNodes(options);
        // Every node's timers on one wheel, 10 ms apart at most: heartbeats, silence and fencing are seconds.
        time ??= nodes._clock = new SharedClock(TimeProvider.System, TimeSpan.FromMilliseconds(10));
        var count = 0;
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, options.Nodes), new ParallelOptions { MaxDegreeOfParallelism = options.StartConcurrency, CancellationToken = cancellationToken },
                async (i, ct) =>
                {
                    var machine = HollowMachine.Create(nodes.Packages, options.ReadyAfter, time, l => nodes._listeners[i] = l);
                    try
                    {
                        nodes._agents[i] = await AgentHost.StartAsync(nodes.AgentOptions(i), machine, loggers, time, ct);
                    }
                    catch (Exception e) when (e is InvalidOperationException or Grpc.Core.RpcException or HttpRequestException or IOException)
                    {
                        throw new InvalidOperationException($"hollow node {options.NodeName(i)} at {options.Address(i)} could not start: {(e is Grpc.Core.RpcException r ? r.Status.Detail : e.Message)}", e);
                    }

                    started?.Invoke(Interlocked.Increment(ref count));
                });
        }
        catch
        {
            await nodes.DisposeAsync();
            throw;
        }

        return nodes;
    }

    public AgentOptions AgentOptions(int i) => new()
    {
        ControllerAgentUrl = _options.Controllers[i % _options.Controllers.Count],
        OtherControllerUrls = [.. _options.Controllers.Where((_, k) => k != i % _options.Controllers.Count)],
        Join = _options.Join,
        NodeName = _options.NodeName(i),
        Address = _options.Address(i),
        FaultDomain = $"fd{i % _options.FaultDomains + 1}",
        StateDirectory = Path.Combine(_options.StateDirectory, "nodes", _options.NodeName(i)),
        ClaimCores = _options.CoresPerNode,
        ClaimMemoryMiB = _options.MemoryMiB ?? _options.CoresPerNode * 8192,
        HeartbeatInterval = _options.HeartbeatInterval,
        FenceAfter = _options.FenceAfter,
        UseCgroups = false,
        UseContainers = false,
    };

    /// <summary>
    /// Stops node i as a machine that dies does: its stream ends without a word, nothing is reported stopped, and the
    /// controller finds out only when the node timeout passes. False when it was already dropped.
    /// </summary>
    public async Task<bool> DropAsync(int i)
    {
        var agent = Interlocked.Exchange(ref _agents[i], null);
        if (agent is null)
        {
            return false;
        }

        agent.StopInstancesOnExit = false;
        await agent.DisposeAsync();
        return true;
    }

    /// <summary>Nodes with an open stream, and the instances of every running node by state.</summary>
    public HollowCounts Counts()
    {
        var connected = 0;
        var running = 0;
        var states = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var agent in _agents)
        {
            if (agent is null)
            {
                continue;
            }

            running++;
            connected += agent.Connection.Connected ? 1 : 0;
            foreach (var report in agent.Supervisor.Reports())
            {
                states[report.State] = states.GetValueOrDefault(report.State) + 1;
            }
        }

        return new HollowCounts(running, connected, states);
    }

    /// <summary>
    /// The controller connects to a node's listener only while it has not met it at its address (enrolment, first Hello);
    /// once a node is connected its listener goes, so that 10,000 nodes fit in the descriptors a process may open.
    /// </summary>
    private async Task CloseListenersAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                for (var i = 0; i < _agents.Length; i++)
                {
                    if (_listeners[i] is { IsOpen: true } listener && _agents[i] is { Connection.Connected: true })
                    {
                        listener.Close();
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Stops every node (its instances left "running", as an agent that exits leaves them) and removes the state folder.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _closing;
        await Parallel.ForEachAsync(Enumerable.Range(0, _agents.Length), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) => await DropAsync(i));
        try
        {
            Directory.Delete(_options.StateDirectory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }

        _stop.Dispose();
        _clock?.Dispose();
    }
}

/// <summary>Hollow nodes still running, those with an open stream to a controller, and their instances by state.</summary>
public sealed record HollowCounts(int Running, int Connected, IReadOnlyDictionary<string, int> Instances)
{
    public int Total => Instances.Values.Sum();

    public int InState(string state) => Instances.GetValueOrDefault(state);

    public override string ToString() =>
        $"{Connected}/{Running} nodes connected; {Total} instances" + (Instances.Count == 0 ? string.Empty : ": " + string.Join(", ", Instances.Select(s => $"{s.Value} {s.Key}")));
}
