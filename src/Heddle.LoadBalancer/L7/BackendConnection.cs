using Heddle.LoadBalancer.L4.Linux;

namespace Heddle.LoadBalancer.L7;

/// <summary>
/// One connection from the proxy to an instance, watched by the event loop for its whole life (one epoll registration,
/// no epoll_ctl per request). While an exchange owns it, its readiness goes to that exchange; while it waits in its
/// backend's idle list, any readiness means the instance closed it (or sent what nobody asked for), and it is closed.
/// </summary>
internal sealed class BackendConnection : IEventHandler
{
    private const uint Readiness = Libc.EpollIn | Libc.EpollOut | Libc.EpollRdHup | Libc.EpollEt;

    private readonly EventLoop _loop;
    private ulong _token;

    private BackendConnection(EventLoop loop, HttpBackend backend, int fd)
    {
        _loop = loop;
        Backend = backend;
        Fd = fd;
    }

    public int Fd { get; }

    public HttpBackend Backend { get; }

    /// <summary>The exchange using it; null while idle.</summary>
    public HttpConnection? Owner { get; set; }

    /// <summary>The connect has completed.</summary>
    public bool Connected { get; set; }

    public bool Closed { get; private set; }

    /// <summary>Readable (edge seen, not yet read dry), and whether a hang-up came with it.</summary>
    public bool Readable { get; set; }

    public bool HangupSeen { get; set; }

    /// <summary>Starts a non-blocking connect to <paramref name="backend"/> for <paramref name="owner"/>; null if no socket could be made.</summary>
    public static unsafe BackendConnection? Open(EventLoop loop, HttpBackend backend, HttpConnection owner, out bool connectedAtOnce)
    {
        connectedAtOnce = false;
        var started = Libc.StartConnect(backend.Address, out var fd);
        if (started is Libc.ConnectStart.NoSocket or Libc.ConnectStart.Failed)
        {
            return null;
        }

        var connection = new BackendConnection(loop, backend, fd) { Owner = owner, Connected = started == Libc.ConnectStart.Connected };
        connection._token = loop.Register(connection);
        if (!loop.Add(fd, connection._token, 1, Readiness))
        {
            loop.Unregister(connection._token);
            Libc.close(fd);
            return null;
        }

        connectedAtOnce = started == Libc.ConnectStart.Connected;
        return connection;
    }

    /// <summary>Schedules a timer for the owner (connect timeout) under this connection's token.</summary>
    public void Schedule(TimeSpan delay, int cookie) => _loop.Schedule(_token, delay, cookie);

    public void OnEvent(int side, uint events)
    {
        if (Owner is { } owner)
        {
            owner.OnBackendEvent(this, events);
            return;
        }

        if ((events & (Libc.EpollIn | Libc.EpollRdHup | Libc.EpollHup | Libc.EpollErr)) != 0 && !StillQuiet())
        {
            Backend.Forget(this);
            Close();
        }
    }

    /// <summary>
    /// An idle connection told readable may only be reporting what its last exchange already read (the edge was queued
    /// before the read): it is kept if a peek finds nothing to read and no end.
    /// </summary>
    private unsafe bool StillQuiet()
    {
        byte one;
        return Libc.recv(Fd, &one, 1, Libc.MsgPeek | Libc.MsgDontWait) < 0 && Libc.Errno == Libc.EAgain;
    }

    public void OnTimer(int cookie) => Owner?.OnBackendTimer(this, cookie);

    public void OnFault(Exception error)
    {
        if (Owner is { } owner)
        {
            owner.OnFault(error);
        }
        else
        {
            Backend.Forget(this);
            Close();
        }
    }

    public void Close()
    {
        if (Closed)
        {
            return;
        }

        Closed = true;
        Owner = null;
        _loop.Unregister(_token);
        Libc.close(Fd);
    }
}
