using System.Net;
using System.Net.Sockets;

namespace Heddle.Testing;

/// <summary>
/// A port at an address where a connection is refused for as long as this is held: a socket bound there that never
/// listens. Nothing else can take the port meanwhile, as it could one handed out by the OS and given back.
/// </summary>
public sealed class RefusingPort : IDisposable
{
    private readonly Socket _socket;

    public RefusingPort(IPAddress address)
    {
        _socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _socket.Bind(new IPEndPoint(address, 0));
        Port = ((IPEndPoint)_socket.LocalEndPoint!).Port;
    }

    public int Port { get; }

    public void Dispose() => _socket.Dispose();
}
