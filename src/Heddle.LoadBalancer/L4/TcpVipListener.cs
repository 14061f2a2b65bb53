using System.Net;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.L4.Linux;
using Heddle.LoadBalancer.LoadBalancing;

namespace Heddle.LoadBalancer.L4;

/// <summary>
/// The L4 proxy for one VIP:port, accepting on every <see cref="EventLoop"/> of the host (one <see cref="TcpAcceptor"/>
/// each). Each new connection picks a backend by the Maglev lookup of its flow hash, so flows spread evenly and
/// removing one of N backends moves only about 1/N of new flows; an established connection stays on its backend.
/// With no backend the client is reset at once. A backend that leaves the pool is drained: no new connections, and
/// its existing ones are closed after the drain timeout. The flow hash uses the listener's own address as the
/// destination.
/// </summary>
internal sealed class TcpVipListener : IVipListener
{
    private readonly IReadOnlyList<EventLoop> _ownedLoops;
    private readonly CancellationTokenSource _stop = new();
    private readonly DrainSchedule _drain;
    private readonly List<TcpAcceptor> _acceptors = [];
    private readonly int _loops;
    private readonly Dictionary<string, TcpBackendCounters[]> _counters = new(StringComparer.Ordinal); // by backend id, one per loop; under its own lock
    private volatile Pool _pool;

    /// <summary>The backends as the loops see them: lookup table, list, and each one's socket address.</summary>
    /// <remarks><see cref="Counters"/>[loop][backend]: the counters each loop's relays write for each backend of the pool.</remarks>
    internal sealed record Pool(MaglevTable Table, IReadOnlyList<Backend> Backends, byte[][] Addresses)
    {
        public TcpBackendCounters[][] Counters { get; init; } = [];

        /// <summary>
        /// The pool for a list of backends, in whatever order it came: ordered by id first, so that every balancer
        /// given the same backends builds the same table (see <see cref="MaglevTable"/>).
        /// </summary>
        public static Pool Of(IReadOnlyList<Backend> backends)
        {
            var ordered = backends.OrderBy(b => b.Id, StringComparer.Ordinal).ToList();
            return new Pool(
                new MaglevTable([.. ordered.Select(b => b.Id)]),
                ordered,
                [.. ordered.Select(b => Libc.SocketAddress(new IPEndPoint(IPAddress.Parse(b.Address), b.Port)))]);
        }
    }

    /// <summary>A listener on loops of its own (<see cref="LoadBalancerOptions.L4Threads"/>; tests, single listeners).</summary>
    public TcpVipListener(VipListener config, LoadBalancerOptions options)
        : this(config, options, StartLoops(options), owned: true)
    {
    }

    /// <summary>The L4 event loops <paramref name="options"/> ask for: <see cref="LoadBalancerOptions.L4Threads"/> of them, each busy-polling as set.</summary>
    internal static EventLoop[] StartLoops(LoadBalancerOptions options) =>
        [.. Enumerable.Range(0, options.L4Threads).Select(i => new EventLoop($"heddle-l4-{i}", options.BusyPoll))];

    public TcpVipListener(VipListener config, LoadBalancerOptions options, IReadOnlyList<EventLoop> loops)
        : this(config, options, loops, owned: false)
    {
    }

    private TcpVipListener(VipListener config, LoadBalancerOptions options, IReadOnlyList<EventLoop> loops, bool owned)
    {
        _ownedLoops = owned ? loops : [];
        _loops = loops.Count;
        Service = config.Service;
        Vip = $"{config.Vip}:{config.Port}";
        _pool = new Pool(new MaglevTable([]), [], []);
        _drain = new DrainSchedule(options.DrainTimeout, () => _pool.Backends.Select(b => b.Id).ToHashSet(StringComparer.Ordinal), gone =>
        {
            _acceptors.ForEach(a => a.Close(gone));
            Forget(gone);
        }, _stop.Token);
        try
        {
            // The first binds the port (port 0: any free one); the others share the port it got.
            var endpoint = new IPEndPoint(IPAddress.Parse(config.Vip), config.Port);
            for (var i = 0; i < loops.Count; i++)
            {
                var loopIndex = i;
                var acceptor = new TcpAcceptor(endpoint, shared: loops.Count > 1, loops[i], a => Relays(a, loops[loopIndex], loopIndex, options.ConnectTimeout),
                    new TcpAcceptor.Limits(options.IdleTimeout, Math.Max(1, options.MaxConnectionsPerVip / loops.Count), options.MaxConnectionsPerClient));
                _acceptors.Add(acceptor);
                endpoint = acceptor.Endpoint;
            }

            Endpoint = endpoint;
            Update(config.Backends);
        }
        catch
        {
            Task.WhenAll(_acceptors.Select(a => a.StopAsync())).GetAwaiter().GetResult();
            foreach (var loop in _ownedLoops)
            {
                loop.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// How one loop's acceptor relays a connection: to the backend the Maglev lookup of its flow's hash picks (the
    /// listener's own address as the destination), or none when the pool is empty (the client is reset).
    /// </summary>
    private RelayFactory Relays(TcpAcceptor acceptor, EventLoop loop, int loopIndex, TimeSpan connectTimeout) => (client, address, port, key, ended) =>
    {
        var pool = _pool;
        var choice = pool.Table.Lookup(FlowHash.Of(address, port, acceptor.LocalAddress, acceptor.Endpoint.Port));
        return choice < 0 ? null
            : new TcpRelay(loop, client, pool, choice, connectTimeout, ended, pool.Counters.Length > loopIndex ? pool.Counters[loopIndex] : null) { Client = key };
    };

    public IPEndPoint Endpoint { get; }

    /// <summary>The service and the VIP:port, as the metrics label them.</summary>
    public string Service { get; }

    public string Vip { get; }

    public int OpenConnections => _acceptors.Sum(a => a.OpenConnections);

    /// <summary>How many connections each loop has open (in the order of the loops).</summary>
    public IReadOnlyList<int> OpenConnectionsByLoop => [.. _acceptors.Select(a => a.OpenConnections)];

    /// <summary>Swaps the pool (from any thread); connections to backends that left it drain.</summary>
    public void Update(IReadOnlyList<Backend> backends)
    {
        var previous = _pool;
        var pool = Pool.Of(backends);
        lock (_counters)
        {
            var byBackend = pool.Backends.Select(b => _counters.TryGetValue(b.Id, out var c) ? c : _counters[b.Id] = [.. Enumerable.Range(0, _loops).Select(_ => new TcpBackendCounters())]).ToList();
            _pool = pool with { Counters = [.. Enumerable.Range(0, _loops).Select(loop => byBackend.Select(c => c[loop]).ToArray())] };
        }

        _drain.Changed(previous.Backends.Select(b => b.Id), _pool.Backends.Select(b => b.Id));
    }

    /// <summary>The counters of backends whose drain is over (their connections are closed): they are not reported any more.</summary>
    private void Forget(HashSet<string> gone)
    {
        lock (_counters)
        {
            foreach (var id in gone)
            {
                _counters.Remove(id);
            }
        }
    }

    /// <summary>Each backend's counters summed over the loops, and what the acceptors refused (read by a scrape, from any thread).</summary>
    public TcpListenerReading Read()
    {
        List<TcpBackendReading> backends;
        lock (_counters)
        {
            backends = [.. _counters.Select(c => new TcpBackendReading(c.Key,
                c.Value.Sum(x => Volatile.Read(ref x.Connections)), c.Value.Sum(x => Volatile.Read(ref x.ConnectFailures)), c.Value.Sum(x => Volatile.Read(ref x.Errors)),
                c.Value.Sum(x => Volatile.Read(ref x.BytesIn)), c.Value.Sum(x => Volatile.Read(ref x.BytesOut))))];
        }

        return new TcpListenerReading(backends, _acceptors.Sum(a => a.RefusedNoBackend), _acceptors.Sum(a => a.RefusedOverLimit), OpenConnections);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync();
        await Task.WhenAll(_acceptors.Select(a => a.StopAsync()));
        foreach (var loop in _ownedLoops)
        {
            loop.Dispose();
        }
    }
}

/// <summary>One backend's counters at a scrape.</summary>
internal sealed record TcpBackendReading(string Backend, long Connections, long ConnectFailures, long Errors, long BytesIn, long BytesOut);

/// <summary>One L4 listener at a scrape.</summary>
internal sealed record TcpListenerReading(IReadOnlyList<TcpBackendReading> Backends, long RefusedNoBackend, long RefusedOverLimit, int Open);
