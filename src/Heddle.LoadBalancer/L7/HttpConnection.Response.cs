using Heddle.LoadBalancer.L4.Linux;
using Yarp.ReverseProxy.Forwarder;

namespace Heddle.LoadBalancer.L7;

/// <summary>The response side of an exchange: read from the instance, framed, passed on to the client in as few sends as it came in reads.</summary>
internal sealed unsafe partial class HttpConnection
{
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
}
