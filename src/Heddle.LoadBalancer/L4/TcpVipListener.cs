using System.Net;
using System.Net.Sockets;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.L4.Linux;
using Heddle.LoadBalancer.LoadBalancing;

namespace Heddle.LoadBalancer.L4;

/// <summary>
/// The L4 proxy for one VIP:port, run on an <see cref="EventLoop"/> (shared by every L4 listener of a host). Each new
/// connection picks a backend by the Maglev lookup of its flow hash, so flows spread evenly and removing one of N
/// backends moves only about 1/N of new flows; an established connection stays on its backend. With no backend the
/// client is reset at once. A backend that leaves the pool is drained: no new connections, and its existing ones are
/// closed after the drain timeout. The flow hash uses the listener's own address as the destination.
/// </summary>
internal sealed class TcpVipListener : IVipListener, IEventHandler
{
    private const int AcceptsPerEvent = 64;
    private static readonly TimeSpan AcceptPause = TimeSpan.FromMilliseconds(100);

    private readonly Socket _listener;
    private readonly int _fd;
    private readonly byte[] _localAddress;
    private readonly LoadBalancerOptions _options;
    private readonly EventLoop _loop;
    private readonly bool _ownsLoop;
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<TcpRelay> _relays = []; // touched on the loop only
    private readonly Action<TcpRelay> _ended;
    private readonly ulong _token;
    private readonly DrainSchedule _drain;
    private int _open;
    private volatile Pool _pool;

    /// <summary>The backends as the loop sees them: lookup table, list, and each one's socket address.</summary>
    internal sealed record Pool(MaglevTable Table, IReadOnlyList<Backend> Backends, byte[][] Addresses);

    /// <summary>A listener on a loop of its own (tests, single listeners).</summary>
    public TcpVipListener(VipListener config, LoadBalancerOptions options)
        : this(config, options, new EventLoop("heddle-l4"), ownsLoop: true)
    {
    }

    public TcpVipListener(VipListener config, LoadBalancerOptions options, EventLoop loop)
        : this(config, options, loop, ownsLoop: false)
    {
    }

    private TcpVipListener(VipListener config, LoadBalancerOptions options, EventLoop loop, bool ownsLoop)
    {
        _options = options;
        _loop = loop;
        _ownsLoop = ownsLoop;
        _ended = relay =>
        {
            _relays.Remove(relay);
            Interlocked.Decrement(ref _open);
        };
        _pool = new Pool(new MaglevTable([]), [], []);
        _drain = new DrainSchedule(options.DrainTimeout, () => _pool.Backends.Select(b => b.Id).ToHashSet(StringComparer.Ordinal), EndDrained, _stop.Token);
        var endpoint = new IPEndPoint(IPAddress.Parse(config.Vip), config.Port);
        _listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _listener.NoDelay = true; // inherited by every accepted socket on Linux: no setsockopt per connection
            _listener.Bind(endpoint);
            _listener.Listen(4096);
            _listener.Blocking = false;
            Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
            _localAddress = Endpoint.Address.GetAddressBytes();
            _fd = (int)_listener.SafeHandle.DangerousGetHandle();
            Update(config.Backends);
            ulong token = 0;
            _loop.InvokeAsync(() =>
            {
                token = _loop.Register(this);
                if (!_loop.Add(_fd, token, 0, Libc.EpollIn))
                {
                    _loop.Unregister(token);
                    throw new SocketException(Libc.Errno);
                }
            }).GetAwaiter().GetResult();
            _token = token;
        }
        catch
        {
            _listener.Dispose();
            if (ownsLoop)
            {
                loop.Dispose();
            }

            throw;
        }
    }

    public IPEndPoint Endpoint { get; }

    public int OpenConnections => Volatile.Read(ref _open);

    /// <summary>Swaps the pool (from any thread); connections to backends that left it drain.</summary>
    public void Update(IReadOnlyList<Backend> backends)
    {
        var ordered = backends.OrderBy(b => b.Id, StringComparer.Ordinal).ToList();
        var previous = _pool;
        _pool = new Pool(
            new MaglevTable([.. ordered.Select(b => b.Id)]),
            ordered,
            [.. ordered.Select(b => Libc.SocketAddress(new IPEndPoint(IPAddress.Parse(b.Address), b.Port)))]);
        _drain.Changed(previous.Backends.Select(b => b.Id), ordered.Select(b => b.Id));
    }

    /// <summary>The drain timeout has passed for <paramref name="backends"/>: their connections are closed.</summary>
    private void EndDrained(HashSet<string> backends) => _loop.Post(() =>
    {
        foreach (var relay in _relays.Where(r => backends.Contains(r.BackendId)).ToList())
        {
            relay.Close();
        }
    });

    public unsafe void OnEvent(int side, uint events)
    {
        var peer = stackalloc byte[128];
        for (var i = 0; i < AcceptsPerEvent; i++)
        {
            var length = 128;
            var client = Libc.accept4(_fd, peer, &length, Libc.SockNonBlock | Libc.SockCloexec);
            if (client >= 0)
            {
                Accepted(client, peer);
                continue;
            }

            var error = Libc.Errno;
            if (error is Libc.EMFile or Libc.ENFile or Libc.ENoBufs or Libc.ENoMem)
            {
                // Out of descriptors or memory: the listener is level-triggered and would be offered again at once,
                // so it stops being watched for a moment (connections wait in the backlog), as HAProxy pauses it.
                _loop.Remove(_fd);
                _loop.Schedule(_token, AcceptPause, 0);
                return;
            }

            if (error == Libc.EAgain)
            {
                return; // none left
            }

            // Anything else (a connection aborted while queued, a signal): the next one is tried.
        }
    }

    private unsafe void Accepted(int client, byte* peer)
    {
        var pool = _pool;
        var family = *(ushort*)peer;
        var port = (peer[2] << 8) | peer[3];
        var address = family == Libc.AfInet6 ? new ReadOnlySpan<byte>(peer + 8, 16) : new ReadOnlySpan<byte>(peer + 4, 4);
        var choice = pool.Table.Lookup(FlowHash.Of(address, port, _localAddress, Endpoint.Port));
        if (choice < 0)
        {
            Libc.CloseWithReset(client);
            return;
        }

        var relay = new TcpRelay(_loop, client, pool, choice, _options.ConnectTimeout, _ended);
        _relays.Add(relay);
        Interlocked.Increment(ref _open);
        if (!relay.Start())
        {
            _relays.Remove(relay);
            Interlocked.Decrement(ref _open);
            Libc.CloseWithReset(client);
        }
    }

    /// <summary>The pause after running out of descriptors is over: accepting resumes.</summary>
    public void OnTimer(int cookie)
    {
        if (!_stop.IsCancellationRequested)
        {
            _loop.Add(_fd, _token, 0, Libc.EpollIn);
        }
    }

    public void OnFault(Exception error)
    {
        // Accepting failed unexpectedly for one connection; the listener goes on.
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync();
        await _loop.InvokeAsync(() =>
        {
            _loop.Remove(_fd);
            _loop.Unregister(_token);
            foreach (var relay in _relays.ToList())
            {
                relay.Close();
            }
        });
        _listener.Dispose();
        if (_ownsLoop)
        {
            _loop.Dispose();
        }
    }
}
