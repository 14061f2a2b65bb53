using Heddle.LoadBalancer.L4.Linux;

namespace Heddle.LoadBalancer.L7;

/// <summary>Tunnels: after 101 Switching Protocols, or an HTTP/2 connection handed whole to the full proxy.</summary>
internal sealed unsafe partial class HttpConnection
{
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
}
