using System.Net;
using System.Net.Sockets;
using Heddle.LoadBalancer.L4.Linux;

namespace Heddle.LoadBalancer.L4;

/// <summary>
/// One listening socket of a VIP:port on one event loop, and the connections it accepted (L4 relays, or L7's
/// pass-through connections: the factory given says which). With several loops each has an acceptor of its own bound
/// with SO_REUSEPORT, and the kernel spreads new connections over them; an L4 backend is still chosen by the Maglev
/// lookup of the flow's hash, so it does not depend on which loop took the connection.
/// </summary>
internal sealed class TcpAcceptor : IEventHandler
{
    private const int AcceptsPerEvent = 64;
    private const int ResumeAccepting = 0;
    private const int SweepIdle = 1;

    /// <summary>Idle timeout, and how many connections the acceptor and one client address may hold.</summary>
    /// <param name="HeadTimeout">How long a request head may take to arrive whole (L7; zero: no limit but the idle timeout).</param>
    public sealed record Limits(TimeSpan IdleTimeout, int MaxConnections, int MaxPerClient, TimeSpan HeadTimeout = default);

    private readonly Limits _limits;
    private readonly Dictionary<UInt128, int> _perClient = []; // touched on the loop only
    private static readonly TimeSpan AcceptPause = TimeSpan.FromMilliseconds(100);

    private readonly Socket _socket;
    private readonly int _fd;
    private readonly EventLoop _loop;
    private readonly RelayFactory _relayFor;
    private readonly HashSet<IRelay> _relays = []; // touched on the loop only
    private readonly Action<IRelay> _ended;
    private ulong _token;
    private bool _stopped;
    private int _open;
    private long _refusedNoBackend; // written on the loop only
    private long _refusedOverLimit;

    /// <summary>
    /// Binds and listens on <paramref name="endpoint"/> (sharing the port when <paramref name="shared"/>), and starts
    /// accepting on <paramref name="loop"/>, each connection handed to what <paramref name="open"/> makes of it.
    /// </summary>
    public TcpAcceptor(IPEndPoint endpoint, bool shared, EventLoop loop, Func<TcpAcceptor, RelayFactory> open, Limits? limits = null)
    {
        _loop = loop;
        _relayFor = open(this);
        _limits = limits ?? new Limits(TimeSpan.FromMinutes(5), 20_000, 1_000);
        _ended = relay =>
        {
            _relays.Remove(relay);
            Interlocked.Decrement(ref _open);
            Release(relay.Client);
        };
        _socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            if (shared)
            {
                _socket.SetRawSocketOption(Libc.SolSocket, Libc.SoReusePort, BitConverter.GetBytes(1));
            }

            _socket.NoDelay = true; // inherited by every accepted socket on Linux: no setsockopt per connection
            _socket.Bind(endpoint);
            _socket.Listen(4096);
            _socket.Blocking = false;
            Endpoint = (IPEndPoint)_socket.LocalEndPoint!;
            LocalAddress = Endpoint.Address.GetAddressBytes();
            _fd = (int)_socket.SafeHandle.DangerousGetHandle();
            _loop.InvokeAsync(() =>
            {
                _token = _loop.Register(this);
                if (!_loop.Add(_fd, _token, 0, Libc.EpollIn))
                {
                    _loop.Unregister(_token);
                    throw new SocketException(Libc.Errno);
                }

                _loop.Schedule(_token, SweepInterval, SweepIdle);
            }).GetAwaiter().GetResult();
        }
        catch
        {
            _socket.Dispose();
            throw;
        }
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>The listening address's bytes, as the flow hash takes them.</summary>
    public byte[] LocalAddress { get; }

    public int OpenConnections => Volatile.Read(ref _open);

    /// <summary>Connections reset at once because the pool had no backend.</summary>
    public long RefusedNoBackend => Volatile.Read(ref _refusedNoBackend);

    /// <summary>Connections reset at once because the VIP or the client held all it may.</summary>
    public long RefusedOverLimit => Volatile.Read(ref _refusedOverLimit);

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
                // Out of descriptors or memory: the socket is level-triggered and would be offered again at once, so
                // it stops being watched for a moment (connections wait in the backlog), as HAProxy pauses it.
                _loop.Remove(_fd);
                _loop.Schedule(_token, AcceptPause, ResumeAccepting);
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
        var family = *(ushort*)peer;
        var port = (peer[2] << 8) | peer[3];
        var address = family == Libc.AfInet6 ? new ReadOnlySpan<byte>(peer + 8, 16) : new ReadOnlySpan<byte>(peer + 4, 4);
        var key = Key(address);
        if (_relays.Count >= _limits.MaxConnections || _perClient.GetValueOrDefault(key) >= _limits.MaxPerClient)
        {
            // The VIP or this client holds all it may: refused at once, never queued.
            _refusedOverLimit++;
            Libc.CloseWithReset(client);
            return;
        }

        var relay = _relayFor(client, address, port, key, _ended);
        if (relay is null)
        {
            _refusedNoBackend++; // no backend (L4): refused at once
            Libc.CloseWithReset(client);
            return;
        }

        _relays.Add(relay);
        _perClient[key] = _perClient.GetValueOrDefault(key) + 1;
        Interlocked.Increment(ref _open);
        if (!relay.Start())
        {
            _relays.Remove(relay);
            Interlocked.Decrement(ref _open);
            Release(key);
            Libc.CloseWithReset(client);
        }
    }

    private TimeSpan SweepInterval => TimeSpan.FromMilliseconds(Math.Clamp(
        (_limits.HeadTimeout > TimeSpan.Zero && _limits.HeadTimeout < _limits.IdleTimeout ? _limits.HeadTimeout : _limits.IdleTimeout).TotalMilliseconds / 4, 50, 5000));

    private static UInt128 Key(ReadOnlySpan<byte> address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.CopyTo(bytes[(16 - address.Length)..]);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    private void Release(UInt128 client)
    {
        if (_perClient.TryGetValue(client, out var held) && held > 1)
        {
            _perClient[client] = held - 1;
        }
        else
        {
            _perClient.Remove(client);
        }
    }

    /// <summary>The pause after running out of descriptors is over: accepting resumes; or it is time to close idle connections.</summary>
    public void OnTimer(int cookie)
    {
        if (_stopped)
        {
            return;
        }

        if (cookie == SweepIdle)
        {
            var now = Environment.TickCount64;
            var cutoff = now - (long)_limits.IdleTimeout.TotalMilliseconds;
            foreach (var relay in _relays.Where(r => r.LastActivity < cutoff).ToList())
            {
                relay.Expire();
            }

            if (_limits.HeadTimeout > TimeSpan.Zero)
            {
                // A client trickling a head (slowloris) is active all the time, so the idle timeout never ends it.
                var headCutoff = now - (long)_limits.HeadTimeout.TotalMilliseconds;
                foreach (var relay in _relays.Where(r => r.HeadSince != 0 && r.HeadSince < headCutoff).ToList())
                {
                    relay.ExpireHead();
                }
            }

            _loop.Schedule(_token, SweepInterval, SweepIdle);
            return;
        }

        _loop.Add(_fd, _token, 0, Libc.EpollIn);
    }

    public void OnFault(Exception error)
    {
        // Accepting failed unexpectedly for one connection; the acceptor goes on.
    }

    /// <summary>Closes the connections to <paramref name="backends"/> (their drain time is over).</summary>
    public void Close(IReadOnlySet<string> backends) => _loop.Post(() =>
    {
        foreach (var relay in _relays.Where(r => r.BackendId is { } id && backends.Contains(id)).ToList())
        {
            relay.Close();
        }
    });

    /// <summary>Stops accepting and closes every connection.</summary>
    public async Task StopAsync()
    {
        await _loop.InvokeAsync(() =>
        {
            _stopped = true;
            _loop.Remove(_fd);
            _loop.Unregister(_token);
            foreach (var relay in _relays.ToList())
            {
                relay.Close();
            }
        });
        _socket.Dispose();
    }
}
