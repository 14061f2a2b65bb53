using System.Buffers;
using Heddle.LoadBalancer.L4.Linux;

namespace Heddle.LoadBalancer.L4;

/// <summary>
/// One client connection relayed to one backend, driven by the event loop (edge-triggered): bytes are read into the
/// loop's scratch buffer and written straight to the other side; only what the other side cannot take yet is copied
/// into a pooled buffer, and reading that way pauses until it has gone (so a slow reader pushes back on its sender
/// through TCP). An idle connection holds no buffer at all. When one side ends its sending, the other side's sending
/// is shut down too (half-close); when either fails, both are closed with a reset towards the client, so a backend
/// that dies never leaves its client hanging. Connecting tries the chosen backend, then one other.
/// </summary>
internal sealed unsafe class TcpRelay : IEventHandler, IRelay
{
    private const int ClientSide = 0;
    private const int BackendSide = 1;
    private const uint Readiness = Libc.EpollIn | Libc.EpollOut | Libc.EpollRdHup | Libc.EpollEt;
    private const uint Hangup = Libc.EpollRdHup | Libc.EpollHup | Libc.EpollErr;

    private readonly EventLoop _loop;
    private readonly TcpVipListener.Pool _pool;
    private readonly int _choice;
    private readonly Action<IRelay> _ended;
    private readonly TimeSpan _connectTimeout;
    private readonly TcpBackendCounters[]? _counters; // this loop's, one per backend of the pool
    private TcpBackendCounters _backend = Unused; // the backend being connected to, or connected
    private static readonly TcpBackendCounters Unused = new(); // a pool made without counters (tests of the pool alone)
    private ulong _token;
    private int _attempt;
    private bool _connected;
    private bool _closed;
    private Half _up;   // client → backend
    private Half _down; // backend → client

    /// <summary>One direction: where it reads, where it writes, and what it could not write yet.</summary>
    private struct Half
    {
        public int From;
        public int To;
        public bool Upstream;
        public bool Readable;
        public bool HangupSeen;
        public bool Ended;
        public byte[]? Pending;
        public int PendingOffset;
        public int PendingCount;
    }

    public TcpRelay(EventLoop loop, int client, TcpVipListener.Pool pool, int choice, TimeSpan connectTimeout, Action<IRelay> ended, TcpBackendCounters[]? counters = null)
    {
        _loop = loop;
        _counters = counters;
        _up.Upstream = true;
        _pool = pool;
        _choice = choice;
        _connectTimeout = connectTimeout;
        _ended = ended;
        _up.From = _down.To = client;
        _up.To = _down.From = -1;
    }

    /// <summary>The backend this connection is on (or being connected to).</summary>
    public string BackendId => _pool.Backends[(_choice + _attempt) % _pool.Backends.Count].Id;

    /// <summary>Starts watching the client and connecting to the chosen backend. Returns false if the client could not be watched.</summary>
    public bool Start()
    {
        _token = _loop.Register(this);
        if (!_loop.Add(_up.From, _token, ClientSide, Readiness))
        {
            _loop.Unregister(_token);
            return false;
        }

        Connect();
        return true;
    }

    /// <summary>When either side last had something to say (Environment.TickCount64): the acceptor closes relays idle too long.</summary>
    public long LastActivity { get; private set; } = Environment.TickCount64;

    /// <summary>The client's address, as the acceptor counts connections per client.</summary>
    public UInt128 Client { get; init; }

    public void OnEvent(int side, uint events)
    {
        if (_closed)
        {
            return;
        }

        LastActivity = Environment.TickCount64;

        ref var reading = ref side == ClientSide ? ref _up : ref _down;
        ref var writing = ref side == ClientSide ? ref _down : ref _up;
        if ((events & (Libc.EpollIn | Hangup)) != 0)
        {
            reading.Readable = true;
            reading.HangupSeen |= (events & Hangup) != 0;
        }

        if (!_connected)
        {
            if (side == BackendSide && (events & (Libc.EpollOut | Hangup)) != 0)
            {
                // Writable without error or hang-up means connected; otherwise the socket's error says why not.
                Connected((events & (Libc.EpollErr | Libc.EpollHup)) == 0 ? 0 : Libc.SocketError(_up.To));
            }

            return;
        }

        if (writing.Pending is not null && (events & (Libc.EpollOut | Hangup)) != 0)
        {
            Pump(ref writing);
        }

        if (reading.Readable && !_closed)
        {
            Pump(ref reading);
        }
    }

    public void OnTimer(int cookie)
    {
        if (!_closed && !_connected && cookie == _attempt)
        {
            NextBackend();
        }
    }

    public void OnFault(Exception error) => Abort();

    /// <summary>Ends the relay now (drain timeout, shutdown): both sides are closed.</summary>
    public void Close() => End(reset: false);

    public void Expire() => Close();

    /// <summary>Fails the relay: the client gets a reset, the backend is closed.</summary>
    private void Abort() => End(reset: true);

    private void End(bool reset)
    {
        if (_closed)
        {
            return;
        }

        if (reset)
        {
            if (_connected)
            {
                _backend.Errors++;
            }

            Libc.CloseWithReset(_up.From);
        }
        else
        {
            Libc.close(_up.From);
        }

        if (_up.To >= 0)
        {
            Libc.close(_up.To);
        }

        _closed = true;
        Release(ref _up);
        Release(ref _down);
        _loop.Unregister(_token);
        _ended(this);
    }

    private void Connect()
    {
        var index = (_choice + _attempt) % _pool.Backends.Count;
        _backend = _counters is { } counters && index < counters.Length ? counters[index] : Unused;
        var address = _pool.Addresses[index];
        var started = Libc.StartConnect(address, out var fd);
        if (started == Libc.ConnectStart.NoSocket)
        {
            Abort();
            return;
        }

        if (started == Libc.ConnectStart.Failed)
        {
            _up.To = _down.From = -1;
            NextBackend();
            return;
        }

        _up.To = _down.From = fd;
        if (!_loop.Add(fd, _token, BackendSide, Readiness))
        {
            Abort();
            return;
        }

        if (started == Libc.ConnectStart.Connected)
        {
            Connected(0);
        }
        else
        {
            _loop.Schedule(_token, _connectTimeout, _attempt);
        }
    }

    private void Connected(int error)
    {
        if (error != 0)
        {
            NextBackend();
            return;
        }

        _connected = true;
        _backend.Connections++;
        Pump(ref _up);
        if (!_closed)
        {
            Pump(ref _down);
        }
    }

    /// <summary>The backend did not take the connection: one other is tried (the pool may not know yet that it died), then the client is reset.</summary>
    private void NextBackend()
    {
        _backend.ConnectFailures++;
        if (_up.To >= 0)
        {
            Libc.close(_up.To);
            _up.To = _down.From = -1;
        }

        _down.Readable = _down.HangupSeen = false;
        _attempt++;
        if (_attempt < Math.Min(2, _pool.Backends.Count))
        {
            Connect();
        }
        else
        {
            Abort();
        }
    }

    /// <summary>Moves bytes one way until the reader has no more or the writer is full.</summary>
    private void Pump(ref Half half)
    {
        if (half.Pending is not null && !Flush(ref half))
        {
            return;
        }

        var scratch = _loop.Scratch;
        while (half.Readable && !half.Ended)
        {
            var read = Libc.recv(half.From, scratch, EventLoop.ScratchSize, 0);
            if (read > 0)
            {
                if (half.Upstream)
                {
                    _backend.BytesIn += read;
                }
                else
                {
                    _backend.BytesOut += read;
                }

                var written = Libc.send(half.To, scratch, read, Libc.MsgNoSignal);
                if (written < 0)
                {
                    if (Libc.Errno != Libc.EAgain)
                    {
                        Abort();
                        return;
                    }

                    written = 0;
                }

                if (written < read)
                {
                    Keep(ref half, scratch + written, (int)(read - written));
                    return;
                }

                // A short read emptied the socket: the next arrival raises a new edge (unless a hang-up is pending).
                if (read < EventLoop.ScratchSize && !half.HangupSeen)
                {
                    half.Readable = false;
                }
            }
            else if (read == 0)
            {
                half.Ended = true;
                half.Readable = false;
                if (_up.Ended && _down.Ended)
                {
                    Close(); // both sides have ended: closing is the last word, no shutdown needed
                }
                else
                {
                    Libc.shutdown(half.To, Libc.ShutWrite);
                }

                return;
            }
            else
            {
                var error = Libc.Errno;
                if (error == Libc.EAgain)
                {
                    half.Readable = false;
                }
                else if (error != Libc.EIntr)
                {
                    Abort();
                }

                if (error != Libc.EIntr)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Writes what was kept; true when all of it has gone.</summary>
    private bool Flush(ref Half half)
    {
        nint written;
        fixed (byte* pending = half.Pending)
        {
            written = Libc.send(half.To, pending + half.PendingOffset, half.PendingCount, Libc.MsgNoSignal);
        }

        if (written < 0)
        {
            if (Libc.Errno != Libc.EAgain)
            {
                Abort();
            }

            return false;
        }

        half.PendingOffset += (int)written;
        half.PendingCount -= (int)written;
        if (half.PendingCount > 0)
        {
            return false;
        }

        Release(ref half);
        return true;
    }

    private static void Keep(ref Half half, byte* data, int count)
    {
        half.Pending = ArrayPool<byte>.Shared.Rent(count);
        new ReadOnlySpan<byte>(data, count).CopyTo(half.Pending);
        half.PendingOffset = 0;
        half.PendingCount = count;
    }

    private static void Release(ref Half half)
    {
        if (half.Pending is not null)
        {
            ArrayPool<byte>.Shared.Return(half.Pending);
            half.Pending = null;
        }
    }
}
