using System.Collections.Concurrent;
using Heddle.Controller.Store;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// Declares a node Down when it has not been heard from for the node timeout (the change feed then queues the services
/// it ran, so their instances are placed elsewhere: service healing). Heartbeats are tracked in memory; a controller that
/// has just started (or has just become the leader) gives every node two timeouts from then to
/// reconnect before judging it (agents come back with a backoff, a TLS handshake and a Hello, all slower on a
/// loaded machine, and a wrong verdict restarts every instance of the node elsewhere).
/// Judging runs only on the leader (<see cref="RunAsync"/>); every controller records the heartbeats it hears. The time
/// the controller itself was stalled (its judging tick came late) does not count as a node's silence (<see cref="NoteTick"/>).
/// </summary>
public sealed partial class NodeHealthMonitor(IClusterStore store, ControllerOptions options, TimeProvider time, Leadership.LeaderTerm? term = null,
    ILogger<NodeHealthMonitor>? logger = null)
{
    /// <summary>
    /// When each node was last heard, as UTC ticks: a value the dictionary writes in place. With a DateTimeOffset each
    /// heartbeat allocated a new entry, which outlived the young generation and left the old generation full of them
    /// (10,000 nodes heard every second).
    /// </summary>
    private readonly ConcurrentDictionary<string, long> _lastSeen = new(StringComparer.Ordinal);
    /// <summary>Since when a node this controller has not heard from counts as silent: two timeouts' grace from the start of judging.</summary>
    private DateTimeOffset _silentSince = time.GetUtcNow() + options.NodeTimeout;
    private readonly SemaphoreSlim _judging = new(1, 1);
    private long _ticks;
    private long _walks;

    /// <summary>How many ticks <see cref="RunAsync"/> has taken, and how many times the nodes were walked (for tests).</summary>
    internal (long Ticks, long Walks) Counts => (Interlocked.Read(ref _ticks), Interlocked.Read(ref _walks));

    public void Seen(string node) => _lastSeen[node] = time.GetUtcNow().UtcTicks;

    /// <summary>
    /// A node (re)joins: it is seen now and <paramref name="markReady"/> records it Ready, both while no Down verdict
    /// is being reached, so a verdict from a heartbeat older than the join cannot land after it and leave a
    /// connected node Down.
    /// </summary>
    public async Task JoinAsync(string node, Func<Task> markReady)
    {
        await _judging.WaitAsync();
        try
        {
            Seen(node);
            await markReady();
        }
        finally
        {
            _judging.Release();
        }
    }

    /// <summary>When the node was last heard from by this controller process, if it has been.</summary>
    public DateTimeOffset? LastSeen(string node) => _lastSeen.TryGetValue(node, out var at) ? new DateTimeOffset(at, TimeSpan.Zero) : null;

    /// <summary>When the node was last heard from by any controller: here, or by another it is connected to (it says so in the store).</summary>
    public DateTimeOffset? LastHeard(string node) => (LastSeen(node), store.NodeSeen(node)) switch
    {
        ({ } here, { } shared) => here > shared ? here : shared,
        var (here, shared) => here ?? shared,
    };

    /// <summary>How often <see cref="RunAsync"/> looks: a hundredth of the node timeout (100 ms at the default 10 s), between 20 and 250 ms.</summary>
    internal static TimeSpan TickOf(TimeSpan nodeTimeout) => TimeSpan.FromMilliseconds(Math.Clamp(nodeTimeout.TotalMilliseconds / 100, 20, 250));

    /// <summary>
    /// Judges nodes until the token is cancelled (this controller stops leading, or stops). It looks every
    /// <see cref="TickOf"/>, so a node is judged Down within a tick of its timeout, but walks the nodes only once the
    /// earliest a node could be due has come (or a node record changed): a node's silence only grows by being heard
    /// less, and what postpones a verdict (a heartbeat, a stall, a later grace) only moves it later. At 1 Hz heartbeats
    /// the oldest heartbeat is about a second old, so a walk comes about once per node timeout, not once per tick: a walk
    /// a second cost every node of the cluster every second, and a node lost just after a walk waited a whole second more.
    /// </summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        _silentSince = time.GetUtcNow() + options.NodeTimeout;
        var period = TickOf(options.NodeTimeout);
        using var timer = new PeriodicTimer(period, time);
        var due = time.GetUtcNow() + period;
        var next = DateTimeOffset.MinValue;
        var walked = -1L; // the store's node records as of the last walk: one joined, came back or was set Ready by another controller since is walked at once
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            var now = time.GetUtcNow();
            NoteTick(due, now);
            if (now >= next || store.NodesVersion != walked)
            {
                walked = store.NodesVersion; // before the walk: a change during it is walked again at the next tick
                next = await JudgeAsync();
            }

            due = time.GetUtcNow() + period;
            Interlocked.Increment(ref _ticks);
        }
    }

    /// <summary>A tick later than this past its time means the controller itself was not running (paused for GC, short of CPU).</summary>
    internal static readonly TimeSpan StallMinimum = TimeSpan.FromMilliseconds(500);

    /// <summary>The controller's recent stalls: when each ended and how long it lasted (under <see cref="_stallsLock"/>).</summary>
    private readonly Queue<(DateTimeOffset Ended, TimeSpan Length)> _stalls = new();
    private readonly Lock _stallsLock = new();

    /// <summary>
    /// The judging tick due at <paramref name="due"/> came at <paramref name="now"/>. Later by more than
    /// <see cref="StallMinimum"/>, the controller was stalled that long: the heartbeats of that time wait unread in its
    /// streams, and a node's silence during it is not the node's. Counted as silence, one stall of a few seconds (a
    /// controller holding 2,500 nodes paused for GC) judged hundreds of live nodes Down at once and moved everything
    /// they ran. Each stall is taken off the silence of the nodes last heard before it ended.
    /// </summary>
    internal void NoteTick(DateTimeOffset due, DateTimeOffset now)
    {
        var late = now - due;
        if (late <= StallMinimum)
        {
            return;
        }

        lock (_stallsLock)
        {
            _stalls.Enqueue((now, late));
            while (_stalls.Count > 0 && now - _stalls.Peek().Ended > 4 * options.NodeTimeout)
            {
                _stalls.Dequeue();
            }
        }

        if (logger is not null && late >= TimeSpan.FromSeconds(1))
        {
            LogStalled(logger, late.TotalSeconds);
        }
    }

    /// <summary>How much of the time since <paramref name="seen"/> the controller was stalled.</summary>
    private TimeSpan StalledSince(DateTimeOffset seen)
    {
        var stalled = TimeSpan.Zero;
        lock (_stallsLock)
        {
            foreach (var (ended, length) in _stalls)
            {
                if (ended > seen)
                {
                    stalled += length < ended - seen ? length : ended - seen;
                }
            }
        }

        return stalled;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Nodes were not judged for {Seconds:0.0} s more than the period: the controller was stalled (paused for garbage collection, or short of CPU). Their silence in that time is not counted against them")]
    private static partial void LogStalled(ILogger logger, double seconds);

    /// <summary>
    /// Every controller sharing a store says in it, every quarter of the node timeout, which nodes it has heard from
    /// lately, so the leader does not judge Down a node that is connected to another controller.
    /// </summary>
    public async Task ShareAsync(Func<IEnumerable<string>> connected, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Max(100, options.NodeTimeout.TotalMilliseconds / 4)), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                var heard = ToShare(connected());
                try
                {
                    await store.PutNodesSeenAsync(heard, stoppingToken);
                    await ReviveAsync(heard);
                }
                catch (Store.Kv.KvUnavailableException)
                {
                    // The store is away: the leader cannot act on anything either; the next tick says it again.
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    // Any other failure of one tick must not end the sharing for the controller's life: the leader
                    // would then judge Down every node connected here. The next tick says it again.
                    if (logger is not null)
                    {
                        LogShareFailed(logger, e);
                    }
                }
            }
        }
        catch (Exception) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: a call cut short by the stop may end in the store client's own error rather than a cancellation.
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not share the nodes heard here; trying again at the next tick")]
    private static partial void LogShareFailed(ILogger logger, Exception exception);

    /// <summary>
    /// What this controller tells the store it heard: only nodes heard within the node timeout, and only where the store
    /// holds older word. A session left half-open by a partition (this controller cut off, the agent long gone to
    /// another) must not overwrite a fresher time with its stale one, which would have the leader judge a connected node Down.
    /// </summary>
    public Dictionary<string, DateTimeOffset> ToShare(IEnumerable<string> connected)
    {
        var now = time.GetUtcNow();
        return connected
            .Select(n => (Node: n, At: LastSeen(n)))
            .Where(h => h.At is { } at && now - at <= options.NodeTimeout && !(store.NodeSeen(h.Node) >= at))
            .ToDictionary(h => h.Node, h => h.At!.Value, StringComparer.Ordinal);
    }

    /// <summary>
    /// A node the leader judged Down (it had not yet seen this controller's word for it) while its stream here stays up
    /// never reconnects to be found again: this controller, hearing it, says it is back.
    /// </summary>
    private async Task ReviveAsync(Dictionary<string, DateTimeOffset> heard)
    {
        var now = time.GetUtcNow();
        foreach (var (node, at) in heard.Where(h => now - h.Value <= options.NodeTimeout))
        {
            if (store.GetNode(node) is { Condition: NodeCondition.Down })
            {
                await store.SetNodeConditionAsync(node, NodeCondition.Ready, at,
                    told: new NewEvent(EventKind.NodeUp, node, $"node {node} is back (connected to another controller); it keeps only what it still owns"));
            }
        }
    }

    /// <summary>
    /// Judges every Ready node once: Down when no controller has heard from it within the node timeout. Returns the
    /// earliest time a node left Ready could be judged Down, were it heard no more (<see cref="RunAsync"/> walks again then).
    /// </summary>
    public async Task<DateTimeOffset> JudgeAsync()
    {
        await _judging.WaitAsync();
        try
        {
            return await CheckNodesAsync();
        }
        finally
        {
            _judging.Release();
        }
    }

    private async Task<DateTimeOffset> CheckNodesAsync()
    {
        var now = time.GetUtcNow();
        var downs = new List<Task<bool>>();
        var earliest = DateTimeOffset.MaxValue;
        Interlocked.Increment(ref _walks);
        foreach (var node in store.ListNodes())
        {
            if (node.Condition != NodeCondition.Ready)
            {
                continue;
            }

            // Heard here, or by another controller the node is connected to (it says so in the store).
            // Never before the grace of this term: what this controller heard before it last led may be from long ago (it was cut off).
            var heard = LastHeard(node.Name) ?? DateTimeOffset.MinValue;
            var seen = heard > _silentSince ? heard : _silentSince;
            var dueAt = seen + StalledSince(seen) + options.NodeTimeout;
            if (now <= dueAt)
            {
                earliest = dueAt < earliest ? dueAt : earliest;
                continue;
            }

            // Only while this controller leads: a leader whose term ended unnoticed (cut off from the store's majority)
            // must not mark a node Down that the new leader hears. The writes of one tick go together: the store
            // commits those that arrive at once in one transaction, where one at a time, 25 nodes lost together
            // were judged Down over 3 s at 2,500 nodes.
            downs.Add(store.SetNodeConditionAsync(node.Name, NodeCondition.Down, seen, term?.Fence,
                told: new NewEvent(EventKind.NodeDown, node.Name, $"node {node.Name} is Down: no heartbeat for {(now - seen).TotalSeconds:0.0} s (timeout {options.NodeTimeout.TotalSeconds:0.#} s)")));
        }

        // A verdict not written (the store refused it: this controller no longer leads) is reached again at the next tick.
        await Task.WhenAll(downs);
        return downs.Count > 0 && downs.Any(d => !d.Result) ? now : earliest;
    }
}
