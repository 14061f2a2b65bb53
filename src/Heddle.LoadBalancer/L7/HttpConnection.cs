using System.Buffers;
using Heddle.LoadBalancer.L4;
using Heddle.LoadBalancer.L4.Linux;
using Yarp.ReverseProxy.Forwarder;

namespace Heddle.LoadBalancer.L7;

/// <summary>
/// One client connection of an http VIP:port, passed through on the event loop (as HAProxy's mode http does): each
/// request head is parsed only as far as framing and routing need, passed on with its hop-by-hop headers replaced by
/// X-Forwarded-For/Proto, to an instance picked per request over a kept-alive connection of this loop; the request
/// body and the response go through as they are, their ends found by <see cref="BodyFraming"/>. Bytes are read into
/// the loop's scratch buffer and sent on at once; only what a side cannot take yet is copied aside, and that direction
/// stops reading until it has gone. A request sent to an instance that failed before answering is sent again under
/// the rules of <see cref="Resend"/>. An upgrade (101) turns the connection into a tunnel; an HTTP/2 connection is
/// tunnelled whole to the full proxy (YARP). One exchange at a time: a pipelined request waits for the answer before.
/// This file: events, the request side and the connection's life; HttpConnection.Response.cs: the response side;
/// HttpConnection.Tunnel.cs: tunnels.
/// </summary>
internal sealed unsafe partial class HttpConnection : IEventHandler, IRelay
{
    private const int MaxSends = 10;
    private const uint Readiness = Libc.EpollIn | Libc.EpollOut | Libc.EpollRdHup | Libc.EpollEt;
    private const uint Hangup = Libc.EpollRdHup | Libc.EpollHup | Libc.EpollErr;

    /// <summary>Room left in front of a response read into the scratch buffer, to insert "Connection: close" without moving the body.</summary>
    private const int Reserve = 64;

    private enum Phase : byte
    {
        Head,
        Forward,
        Tunnel,
    }

    private static ReadOnlySpan<byte> CloseHeader => "Connection: close\r\n"u8;

    private readonly EventLoop _loop;
    private readonly int _client;
    private readonly HttpBackends _backends;
    private readonly HttpVipState _vip;
    private readonly byte[] _forwardedFor;
    private readonly Action<IRelay> _ended;
    private ulong _token;
    private bool _closed;
    private bool _clientReadable;
    private bool _clientHangup;
    private Phase _phase;
    private bool _closeAfter;
    private bool _inFlight;
    private bool _answered; // the response is all read (or made here); the exchange ends once the client has it

    private ByteQueue _in; // client bytes not used yet: a head still arriving, body, or the next request
    private bool _inWaiting; // _in holds an incomplete head: read more before parsing again
    private long _headSince; // when the head now arriving began to (Environment.TickCount64); 0: none is
    private byte[]? _out; // the request head as passed on, kept until the answer starts
    private int _outCount;
    private HttpHead _request;
    private BodyFraming _requestBody;
    private bool _headSent;
    private int _sends;
    private List<HttpBackend>? _tried;
    private HttpBackend? _target;
    private bool _onTarget; // counted in _target.InFlight
    private BackendConnection? _backend;
    private ByteQueue _up; // for the instance, not taken yet
    private ByteQueue _down; // for the client, not taken yet
    private ByteQueue _responseHead; // a response head split over reads
    private bool _haveResponseHead;
    private bool _responseStarted;
    private bool _reusable;
    private HttpHead _response;
    private BodyFraming _responseBody;
    private byte* _emitStart; // response bytes in the scratch buffer gathered for one send to the client
    private int _emitCount;
    private bool _clientEnded; // tunnel: the client has finished sending
    private bool _backendEnded;

    public HttpConnection(EventLoop loop, int client, HttpBackends backends, HttpVipState vip, byte[] forwardedFor, Action<IRelay> ended)
    {
        _loop = loop;
        _client = client;
        _backends = backends;
        _vip = vip;
        _forwardedFor = forwardedFor;
        _ended = ended;
    }

    public string? BackendId => _phase == Phase.Head ? null : _target?.Id;

    public long LastActivity { get; private set; } = Environment.TickCount64;

    public long HeadSince => _phase == Phase.Head && !_answered ? _headSince : 0;

    public UInt128 Client { get; init; }

    public bool Start()
    {
        _token = _loop.Register(this);
        if (!_loop.Add(_client, _token, 0, Readiness))
        {
            _loop.Unregister(_token);
            return false;
        }

        return true;
    }

    public void OnEvent(int side, uint events)
    {
        if (_closed)
        {
            return;
        }

        LastActivity = Environment.TickCount64;
        if ((events & (Libc.EpollIn | Hangup)) != 0)
        {
            _clientReadable = true;
            _clientHangup |= (events & Hangup) != 0;
        }

        if (!_down.IsEmpty && (events & (Libc.EpollOut | Hangup)) != 0 && !FlushDown())
        {
            return;
        }

        Drive();
    }

    public void OnBackendEvent(BackendConnection connection, uint events)
    {
        if (_closed || connection != _backend)
        {
            return;
        }

        LastActivity = Environment.TickCount64;
        if ((events & (Libc.EpollIn | Hangup)) != 0)
        {
            connection.Readable = true;
            connection.HangupSeen |= (events & Hangup) != 0;
        }

        if (!connection.Connected)
        {
            if ((events & (Libc.EpollOut | Hangup)) == 0)
            {
                return;
            }

            if ((events & (Libc.EpollErr | Libc.EpollHup)) != 0)
            {
                Resend(ForwarderError.Request); // refused, or unreachable
                Drive();
                return;
            }

            connection.Connected = true;
        }

        if (!_up.IsEmpty && (events & (Libc.EpollOut | Hangup)) != 0 && !FlushUp())
        {
            return;
        }

        Drive();
    }

    public void OnBackendTimer(BackendConnection connection, int cookie)
    {
        if (!_closed && connection == _backend && !connection.Connected)
        {
            Resend(ForwarderError.Request); // not accepted within the connect timeout
            Drive();
        }
    }

    public void OnTimer(int cookie)
    {
    }

    public void OnFault(Exception error) => End(reset: true);

    /// <summary>
    /// Ends the connection now (the drain timeout of its instance has passed, or the listener stops). A request in flight
    /// is cut with a reset, so that its client sees it aborted rather than a kept-alive connection that closed before
    /// the request reached it (which an HTTP client may send again, to wherever).
    /// </summary>
    public void Close() => End(reset: _phase != Phase.Head);

    public void Expire()
    {
        if (!_closed && _phase == Phase.Forward && !_responseStarted && _backend is not null)
        {
            Resend(ForwarderError.RequestTimedOut); // the instance has been silent for the idle timeout: 504
            Drive();
            return;
        }

        Close();
    }

    public void ExpireHead()
    {
        if (!_closed && HeadSince != 0)
        {
            _headSince = 0;
            Answer(_vip.Answers.RequestTimeout, close: true);
        }
    }

    /// <summary>Does whatever the readiness seen so far allows, until nothing moves.</summary>
    private void Drive()
    {
        while (!_closed)
        {
            var moved = _phase switch
            {
                Phase.Head => _down.IsEmpty && !_answered && ReadHead(),
                Phase.Forward => Forward(),
                _ => Tunnel(),
            };
            if (!moved)
            {
                return;
            }
        }
    }

    private bool ReadHead()
    {
        if (_in.Count > 0 && !_inWaiting)
        {
            return Begin(_in.Span, inScratch: false);
        }

        if (!_clientReadable)
        {
            return false;
        }

        var scratch = _loop.Scratch;
        var read = Libc.recv(_client, scratch, EventLoop.ScratchSize, 0);
        if (read > 0)
        {
            if (read < EventLoop.ScratchSize && !_clientHangup)
            {
                _clientReadable = false;
            }

            if (_in.Count == 0)
            {
                return Begin(new ReadOnlySpan<byte>(scratch, (int)read), inScratch: true);
            }

            _in.Add(new ReadOnlySpan<byte>(scratch, (int)read));
            _inWaiting = false;
            return true;
        }

        return ReadFailed(read, ref _clientReadable);
    }

    /// <summary>recv gave 0 or -1 on the client: it left (closed quietly), has no more for now, or failed (reset).</summary>
    private bool ReadFailed(nint read, ref bool readable)
    {
        var error = read < 0 ? Libc.Errno : 0;
        if (error == Libc.EAgain)
        {
            readable = false;
            return false;
        }

        if (error == Libc.EIntr)
        {
            return true;
        }

        End(reset: read < 0);
        return false;
    }

    /// <summary>A request head may be complete in <paramref name="data"/>: starts its exchange, or answers it here.</summary>
    private bool Begin(ReadOnlySpan<byte> data, bool inScratch)
    {
        switch (HttpHead.TryParse(data, request: true, out var head))
        {
            case HeadParse.Incomplete:
                if (inScratch)
                {
                    _in.Add(data);
                }

                _inWaiting = true;
                if (_headSince == 0)
                {
                    _headSince = Environment.TickCount64;
                }

                return _clientReadable;
            case HeadParse.TooLarge:
                _headSince = 0;
                Answer(_vip.Answers.HeadTooLarge, close: true);
                return false;
            case HeadParse.Invalid:
                _headSince = 0;
                Answer(_vip.Answers.BadRequest, close: true);
                return false;
            case HeadParse.Http2:
                if (inScratch)
                {
                    _in.Add(data);
                }

                _headSince = 0;
                return StartTunnelToFallback();
        }

        _headSince = 0;
        _request = head;
        if (_backends.Current.Length == 0)
        {
            _vip.Counters.NoBackend();
            ConsumeIn(data, head.Length, inScratch);
            Answer(_vip.Answers.NoBackend, close: head.Close || head.HasBody);
            return true;
        }

        var room = head.Length + _forwardedFor.Length + 64;
        if (_out is null || _out.Length < room)
        {
            Return(ref _out);
            _out = ArrayPool<byte>.Shared.Rent(Math.Max(room, 1024));
        }

        _outCount = HttpHead.WriteRequest(data[..head.Length], head.HasStrippedHeaders && !head.Upgrade, _forwardedFor, _out);
        ConsumeIn(data, head.Length, inScratch);
        _requestBody = head.Chunked ? BodyFraming.Chunks() : BodyFraming.Length(Math.Max(0, head.ContentLength));
        _closeAfter = head.Close;
        _phase = Phase.Forward;
        _inFlight = true;
        _vip.Started();
        _sends = 0;
        _tried?.Clear();
        _responseStarted = _haveResponseHead = false;
        _responseHead.Clear();
        Connect(_backends.Pick(null));
        return true;
    }

    /// <summary>Sends the request to <paramref name="backend"/>: over one of its idle connections for a first send, a new one for a resend.</summary>
    private void Connect(HttpBackend? backend)
    {
        if (backend is null)
        {
            _vip.Counters.NoBackend(); // the pool emptied under the request
            EndRequest();
            Answer(_vip.Answers.NoBackend, close: _closeAfter || !_requestBody.Done);
            return;
        }

        _target = backend;
        _onTarget = true;
        backend.InFlight++;
        _sends++;
        _headSent = false;
        var connection = _sends == 1 ? backend.TakeIdle() : null;
        if (connection is not null)
        {
            connection.Owner = this;
            _backend = connection;
            return;
        }

        connection = BackendConnection.Open(_loop, backend, this, out var connected);
        if (connection is null)
        {
            Resend(ForwarderError.Request);
            return;
        }

        _backend = connection;
        if (!connected)
        {
            connection.Schedule(_vip.ConnectTimeout, _sends);
        }
    }

    /// <summary>
    /// The send to the current instance failed before any answer. An idempotent request without a body (GET, HEAD,
    /// OPTIONS, TRACE, PUT, DELETE) is sent again: to another instance while there is one it has not been sent to (the
    /// instance refused or reset: it died, and the health checks have not caught up yet), else to the same one on a new
    /// connection (it closed a kept-alive connection just as the request went out on it, as a server at its keep-alive
    /// limit does), up to <see cref="MaxSends"/> sends in all; an instance that timed out is not asked again. Like
    /// nginx's proxy_next_upstream, a POST or PATCH is never sent twice. Otherwise the client gets 502 (504 for a timeout).
    /// </summary>
    private void Resend(ForwarderError error)
    {
        var failed = _target!;
        DropBackend();
        failed.Counters.Failed(error);
        LeaveTarget();
        if (_request.Idempotent && !_request.HasBody && _sends < MaxSends)
        {
            (_tried ??= []).Add(failed);
            var next = _backends.Pick(_tried);
            if (next is not null && (error != ForwarderError.RequestTimedOut || !_tried.Contains(next)))
            {
                Connect(next);
                return;
            }
        }

        failed.Counters.Answered(error == ForwarderError.RequestTimedOut ? 504 : 502);
        EndRequest();
        var answer = error == ForwarderError.RequestTimedOut ? _vip.Answers.GatewayTimeout : _vip.Answers.BadGateway;
        Answer(answer, close: _closeAfter || _request.HasBody);
    }

    private bool Forward()
    {
        var backend = _backend;
        if (backend is null || !backend.Connected || _answered)
        {
            return false;
        }

        if (!_headSent)
        {
            _headSent = true;
            var sent = SendUp(_out.AsSpan(0, _outCount));
            if (sent <= 0)
            {
                return sent < 0;
            }
        }

        while (!_requestBody.Done && _up.IsEmpty)
        {
            if (_in.Count > 0)
            {
                var take = _requestBody.Consume(_in.Span);
                if (take < 0)
                {
                    End(reset: true); // broken chunk framing: nothing sensible can follow
                    return false;
                }

                var sent = SendUp(_in.Span[..take]);
                _in.Drop(take);
                if (sent <= 0)
                {
                    return sent < 0;
                }

                continue;
            }

            if (!_clientReadable)
            {
                break;
            }

            var scratch = _loop.Scratch;
            var read = Libc.recv(_client, scratch, EventLoop.ScratchSize, 0);
            if (read <= 0)
            {
                if (!ReadFailed(read, ref _clientReadable))
                {
                    break;
                }

                continue;
            }

            if (read < EventLoop.ScratchSize && !_clientHangup)
            {
                _clientReadable = false;
            }

            var bytes = new ReadOnlySpan<byte>(scratch, (int)read);
            var used = _requestBody.Consume(bytes);
            if (used < 0)
            {
                End(reset: true);
                return false;
            }

            _in.Add(bytes[used..]); // the next request, pipelined
            var result = SendUp(bytes[..used]);
            if (result <= 0)
            {
                return result < 0;
            }
        }

        return !_closed && _backend == backend && backend.Readable && _down.IsEmpty && ReadResponse(backend);
    }

    /// <summary>The proxy's own answer (503, 502, 504, 400, 431); the exchange ends once the client has it.</summary>
    private void Answer((byte[] Open, byte[] Close) answer, bool close)
    {
        _closeAfter |= close;
        _answered = true;
        SendToClient(_closeAfter ? answer.Close : answer.Open); // the balancer's, not an instance's: not counted as relayed
        if (!_closed && _down.IsEmpty)
        {
            Finish();
        }
    }

    /// <summary>The client has the whole answer: the connection closes, or waits for the next request.</summary>
    private void Finish()
    {
        _answered = false;
        if (_closeAfter)
        {
            End(reset: false);
            return;
        }

        _phase = Phase.Head;
        _target = null;
        _haveResponseHead = _responseStarted = false;
    }

    private void EndRequest()
    {
        if (_inFlight)
        {
            _inFlight = false;
            _vip.Ended();
        }
    }

    private void LeaveTarget()
    {
        if (_onTarget)
        {
            _onTarget = false;
            _target!.InFlight--;
        }
    }

    private void DropBackend()
    {
        _backend?.Close();
        _backend = null;
        _up.Clear();
    }

    /// <summary>1: all sent; 0: the rest kept until the instance can take it; -1: the send failed (handled: resent, or answered).</summary>
    private int SendUp(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return 1;
        }

        _target?.Counters.SentIn(data.Length); // passed on, at once or from the queue
        nint written;
        fixed (byte* bytes = data)
        {
            written = Libc.send(_backend!.Fd, bytes, data.Length, Libc.MsgNoSignal);
        }

        if (written < 0)
        {
            if (Libc.Errno != Libc.EAgain)
            {
                if (_phase == Phase.Tunnel)
                {
                    End(reset: true);
                }
                else if (!_responseStarted)
                {
                    Resend(_request.HasBody ? ForwarderError.RequestBodyDestination : ForwarderError.Request);
                }
                else
                {
                    End(reset: true);
                }

                return -1;
            }

            written = 0;
        }

        if (written < data.Length)
        {
            _up.Add(data[(int)written..]);
            return 0;
        }

        return 1;
    }

    private bool FlushUp()
    {
        var sent = _up.SendTo(_backend!.Fd);
        if (sent < 0)
        {
            if (_phase == Phase.Forward && !_responseStarted)
            {
                Resend(_request.HasBody ? ForwarderError.RequestBodyDestination : ForwarderError.Request);
                Drive();
            }
            else
            {
                End(reset: true);
            }

            return false;
        }

        return sent > 0;
    }

    /// <summary>Passes the instance's bytes on to the client (counted as the instance's).</summary>
    private void SendDown(ReadOnlySpan<byte> data)
    {
        if (!data.IsEmpty && !_closed)
        {
            _target?.Counters.SentOut(data.Length);
            SendToClient(data);
        }
    }

    /// <summary>Sends to the client at once, or after what is already waiting for it.</summary>
    private void SendToClient(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty || _closed)
        {
            return;
        }

        if (!_down.IsEmpty)
        {
            _down.Add(data);
            return;
        }

        nint written;
        fixed (byte* bytes = data)
        {
            written = Libc.send(_client, bytes, data.Length, Libc.MsgNoSignal);
        }

        if (written < 0)
        {
            if (Libc.Errno != Libc.EAgain)
            {
                ClientGone();
                return;
            }

            written = 0;
        }

        if (written < data.Length)
        {
            _down.Add(data[(int)written..]);
        }
    }

    private bool FlushDown()
    {
        var sent = _down.SendTo(_client);
        if (sent < 0)
        {
            ClientGone();
            return false;
        }

        if (sent > 0 && _answered)
        {
            Finish();
        }

        return sent > 0 && !_closed;
    }

    private void ClientGone()
    {
        if (_target is not null && _phase == Phase.Forward && !_answered)
        {
            _target.Counters.Failed(ForwarderError.ResponseBodyClient);
        }

        End(reset: true);
    }

    private void ConsumeIn(ReadOnlySpan<byte> data, int used, bool inScratch)
    {
        if (inScratch)
        {
            _in.Add(data[used..]);
        }
        else
        {
            _in.Drop(used);
        }
    }

    private static void Return(ref byte[]? buffer)
    {
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = null;
        }
    }

    private void End(bool reset)
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        _backend?.Close();
        _backend = null;
        LeaveTarget();
        EndRequest();
        if (reset)
        {
            Libc.CloseWithReset(_client);
        }
        else
        {
            Libc.close(_client);
        }

        _up.Clear();
        _down.Clear();
        _in.Clear();
        _responseHead.Clear();
        Return(ref _out);
        _loop.Unregister(_token);
        _ended(this);
    }
}
