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
/// </summary>
internal sealed unsafe class HttpConnection : IEventHandler, IRelay
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
                return _clientReadable;
            case HeadParse.TooLarge:
                Answer(_vip.Answers.HeadTooLarge, close: true);
                return false;
            case HeadParse.Invalid:
                Answer(_vip.Answers.BadRequest, close: true);
                return false;
            case HeadParse.Http2:
                if (inScratch)
                {
                    _in.Add(data);
                }

                return StartTunnelToFallback();
        }

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

    private bool ReadResponse(BackendConnection backend)
    {
        var buffer = _loop.Scratch + Reserve;
        const int room = EventLoop.ScratchSize - Reserve;
        var read = Libc.recv(backend.Fd, buffer, room, 0);
        if (read > 0)
        {
            if (read < room && !backend.HangupSeen)
            {
                backend.Readable = false;
            }

            OnResponseBytes(buffer, (int)read);
            return true;
        }

        var error = read < 0 ? Libc.Errno : 0;
        if (error == Libc.EAgain)
        {
            backend.Readable = false;
            return false;
        }

        if (error == Libc.EIntr)
        {
            return true;
        }

        if (_haveResponseHead && _responseBody.EndsWithClose && read == 0)
        {
            _reusable = false;
            Answered();
        }
        else if (!_responseStarted)
        {
            Resend(ForwarderError.Request);
        }
        else
        {
            _target!.Counters.Failed(ForwarderError.ResponseBodyDestination);
            End(reset: true); // cut mid-answer: the client must not take it for whole
        }

        return true;
    }

    /// <summary>
    /// Response bytes at <paramref name="data"/> in the scratch buffer, with <see cref="Reserve"/> bytes of room before
    /// them: passed on to the client in one send (head and body together), whatever they hold.
    /// </summary>
    private void OnResponseBytes(byte* data, int count)
    {
        PassOn(data, count);
        FlushEmit();
    }

    /// <summary>Adds scratch bytes to the send being gathered; bytes not right after it send what was gathered first.</summary>
    private void Emit(byte* data, int count)
    {
        if (_emitCount > 0 && _emitStart + _emitCount != data)
        {
            FlushEmit();
        }

        if (_emitCount == 0)
        {
            _emitStart = data;
        }

        _emitCount += count;
    }

    private void FlushEmit()
    {
        if (_emitCount > 0)
        {
            var count = _emitCount;
            _emitCount = 0;
            SendDown(new ReadOnlySpan<byte>(_emitStart, count));
        }
    }

    private void PassOn(byte* data, int count)
    {
        while (count > 0 && !_closed && _phase == Phase.Forward && !_answered)
        {
            if (_haveResponseHead)
            {
                var body = new ReadOnlySpan<byte>(data, count);
                var take = _responseBody.Consume(body);
                if (take < 0)
                {
                    _target!.Counters.Failed(ForwarderError.ResponseBodyDestination);
                    End(reset: true);
                    return;
                }

                Emit(data, take);
                _reusable &= take == count; // anything after the response was not asked for
                if (_responseBody.Done)
                {
                    Answered();
                }

                return;
            }

            var assembled = _responseHead.Count > 0;
            if (assembled)
            {
                _responseHead.Add(new ReadOnlySpan<byte>(data, count));
            }

            var source = assembled ? _responseHead.Span : new Span<byte>(data, count);
            var parse = HttpHead.TryParse(source, request: false, out _response);
            if (parse == HeadParse.Incomplete)
            {
                if (!assembled)
                {
                    _responseHead.Add(source);
                }

                return;
            }

            if (parse != HeadParse.Complete)
            {
                _target!.Counters.Failed(ForwarderError.ResponseHeaders);
                if (_responseStarted)
                {
                    End(reset: true);
                    return;
                }

                DropBackend();
                LeaveTarget();
                _target!.Counters.Answered(502);
                EndRequest();
                Answer(_vip.Answers.BadGateway, close: true);
                return;
            }

            var used = assembled ? _response.Length - (_responseHead.Count - count) : _response.Length;
            _responseStarted = true;
            var status = _response.Status;
            var interim = status is >= 100 and < 200 && status != 101;
            var framing = interim || _request.IsHead || status is 204 or 304 ? BodyFraming.None
                : _response.Chunked ? BodyFraming.Chunks()
                : _response.ContentLength >= 0 ? BodyFraming.Length(_response.ContentLength)
                : BodyFraming.UntilClose();
            if (!interim)
            {
                _closeAfter |= _response.Close || framing.EndsWithClose;
                _reusable = !_response.Close && !framing.EndsWithClose && status != 101;
            }

            var headBytes = assembled ? _responseHead.Span[.._response.Length] : new Span<byte>(data, _response.Length);
            if (!interim && status != 101 && _closeAfter && !_response.Close)
            {
                SendHeadWithClose(headBytes, assembled);
            }
            else if (assembled)
            {
                FlushEmit();
                SendDown(headBytes);
            }
            else
            {
                Emit(data, _response.Length);
            }

            _responseHead.Clear(); // an assembled head has been sent (or copied aside)

            data += used;
            count -= used;
            if (status == 101)
            {
                Emit(data, count);
                FlushEmit();
                _phase = Phase.Tunnel; // switched protocols: bytes both ways until either side closes
                return;
            }

            if (!interim)
            {
                _haveResponseHead = true;
                _responseBody = framing;
                if (framing.Done)
                {
                    _reusable &= count == 0;
                    Answered();
                    return;
                }
            }
        }
    }

    /// <summary>The response head, with "Connection: close" added before its empty line (the client asked for it, or the body ends with the connection).</summary>
    private void SendHeadWithClose(Span<byte> head, bool assembled)
    {
        var line = CloseHeader;
        if (!assembled)
        {
            fixed (byte* start = head)
            {
                var moved = new Span<byte>(start - line.Length, head.Length + line.Length);
                head[..^2].CopyTo(moved); // into the reserved room before it, the empty line left where it was
                line.CopyTo(moved[(head.Length - 2)..]);
                Emit(start - line.Length, moved.Length); // still followed by the body: one send for both
            }

            return;
        }

        FlushEmit();
        SendDown(head[..^2]);
        SendDown(line);
        SendDown("\r\n"u8);
    }

    /// <summary>The whole response has been read: the instance's connection goes back to its idle list if it can serve another request.</summary>
    private void Answered()
    {
        FlushEmit(); // the client has the whole response before the connection may close
        var backend = _backend!;
        _backend = null;
        _target!.Counters.Answered(_response.Status);
        if (_reusable && _requestBody.Done && _up.IsEmpty)
        {
            _target.Release(backend);
        }
        else
        {
            backend.Close();
        }

        _closeAfter |= !_requestBody.Done; // the rest of its body would be taken for the next request
        LeaveTarget();
        EndRequest();
        _answered = true;
        if (_down.IsEmpty)
        {
            Finish();
        }
    }

    /// <summary>The proxy's own answer (503, 502, 504, 400, 431); the exchange ends once the client has it.</summary>
    private void Answer((byte[] Open, byte[] Close) answer, bool close)
    {
        _closeAfter |= close;
        _answered = true;
        SendDown(_closeAfter ? answer.Close : answer.Open);
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

    private bool StartTunnelToFallback()
    {
        if (_backends.Fallback is not { } fallback)
        {
            Answer(_vip.Answers.BadRequest, close: true);
            return false;
        }

        _phase = Phase.Tunnel;
        _target = fallback;
        _backend = BackendConnection.Open(_loop, fallback, this, out _);
        if (_backend is null)
        {
            End(reset: true);
            return false;
        }

        return true;
    }

    /// <summary>Tunnel (after 101, or HTTP/2 to the full proxy): bytes both ways as they come, each side's end passed on.</summary>
    private bool Tunnel()
    {
        var backend = _backend;
        if (backend is null || !backend.Connected)
        {
            return false;
        }

        var moved = false;
        if (_up.IsEmpty && !_clientEnded && (_in.Count > 0 || _clientReadable))
        {
            if (_in.Count > 0)
            {
                SendUp(_in.Span);
                _in.Clear();
                return !_closed;
            }

            var read = Libc.recv(_client, _loop.Scratch, EventLoop.ScratchSize, 0);
            if (read > 0)
            {
                _clientReadable &= read == EventLoop.ScratchSize || _clientHangup;
                SendUp(new ReadOnlySpan<byte>(_loop.Scratch, (int)read));
                moved = true;
            }
            else if (read == 0 || Libc.Errno != Libc.EAgain)
            {
                _clientEnded = true;
                EndedOneWay(backend.Fd);
                moved = true;
            }
            else
            {
                _clientReadable = false;
            }
        }

        if (!_closed && _down.IsEmpty && !_backendEnded && backend.Readable && _backend == backend)
        {
            var read = Libc.recv(backend.Fd, _loop.Scratch, EventLoop.ScratchSize, 0);
            if (read > 0)
            {
                backend.Readable &= read == EventLoop.ScratchSize || backend.HangupSeen;
                SendDown(new ReadOnlySpan<byte>(_loop.Scratch, (int)read));
                moved = true;
            }
            else if (read == 0 || Libc.Errno != Libc.EAgain)
            {
                _backendEnded = true;
                EndedOneWay(_client);
                moved = true;
            }
            else
            {
                backend.Readable = false;
            }
        }

        return moved && !_closed;
    }

    private void EndedOneWay(int other)
    {
        if (_clientEnded && _backendEnded)
        {
            End(reset: false);
            return;
        }

        Libc.shutdown(other, Libc.ShutWrite);
    }

    /// <summary>1: all sent; 0: the rest kept until the instance can take it; -1: the send failed (handled: resent, or answered).</summary>
    private int SendUp(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return 1;
        }

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

    /// <summary>Sends to the client at once, or after what is already waiting for it.</summary>
    private void SendDown(ReadOnlySpan<byte> data)
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
