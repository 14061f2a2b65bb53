using System.Net;
using System.Net.Sockets;
using Heddle.Agent.Logs;

namespace Heddle.Agent.Hollow;

/// <summary>
/// A hollow node's stand-in for the log server: a bare TCP listener at the node's address that accepts and closes, which
/// is all the controller asks of the log port (a TCP connect at enrolment and at the first Hello, to check it reaches
/// the node). It serves no logs. Once the node is connected it can be closed early (<see cref="Close"/>): ten thousand
/// nodes in one process would otherwise hold ten thousand more descriptors than the process may open.
/// </summary>
public sealed class ReachabilityListener : ILogEndpoint
{
    private readonly Socket _socket;
    private readonly Task _accepting;
    private int _closed;

    private ReachabilityListener(Socket socket)
    {
        _socket = socket;
        var bound = (IPEndPoint)socket.LocalEndPoint!;
        Url = new Uri($"https://{bound}/");
        _accepting = AcceptAsync();
    }

    public Uri Url { get; }

    public bool IsOpen => Volatile.Read(ref _closed) == 0;

    public static Task<ILogEndpoint> StartAsync(string address, int port)
    {
        var ip = IPAddress.Parse(address);
        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(ip, port));
            socket.Listen(16);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new InvalidOperationException($"a hollow node cannot listen on {new IPEndPoint(ip, port)} ({e.Message}): is {address} an address of this host?", e);
        }

        return Task.FromResult<ILogEndpoint>(new ReachabilityListener(socket));
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                using var client = await _socket.AcceptAsync();
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Stops listening (idempotent).</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            _socket.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Close();
        await _accepting;
    }
}
