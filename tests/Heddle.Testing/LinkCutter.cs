using System.Net;
using System.Net.Sockets;

namespace Heddle.Testing;

/// <summary>
/// A TCP forwarder on loopback between an agent and the controller, which a test can cut (every forwarded connection
/// reset, new ones refused) and restore: a network partition of one node without touching the others.
/// </summary>
public sealed class LinkCutter : IAsyncDisposable
{
    private readonly IPEndPoint _target;
    private readonly List<(TcpClient A, TcpClient B)> _pairs = [];
    private readonly CancellationTokenSource _stop = new();
    private TcpListener _listener;
    private Task _accepting;
    private int _port;
    private readonly string _scheme;

    public LinkCutter(Uri target)
    {
        _scheme = target.Scheme;
        _target = new IPEndPoint(IPAddress.Parse(target.Host), target.Port);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync(_listener);
    }

    /// <summary>Where the agent connects instead of the controller.</summary>
    public Uri Url => new($"{_scheme}://127.0.0.1:{_port}/");

    public bool IsCut { get; private set; }

    /// <summary>Resets every connection through the link and refuses new ones until <see cref="RestoreAsync"/>.</summary>
    public async Task CutAsync()
    {
        IsCut = true;
        _listener.Stop();
        await _accepting;
        lock (_pairs)
        {
            foreach (var (a, b) in _pairs)
            {
                a.Client.LingerState = new LingerOption(true, 0);
                a.Dispose();
                b.Dispose();
            }

            _pairs.Clear();
        }
    }

    /// <summary>Listens again on the same port.</summary>
    public void Restore()
    {
        _listener = new TcpListener(IPAddress.Loopback, _port);
        _listener.Start();
        IsCut = false;
        _accepting = AcceptAsync(_listener);
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
            {
                return;
            }

            var upstream = new TcpClient();
            try
            {
                await upstream.ConnectAsync(_target);
            }
            catch (SocketException)
            {
                client.Dispose();
                upstream.Dispose();
                continue;
            }

            lock (_pairs)
            {
                _pairs.Add((client, upstream));
            }

            _ = PumpAsync(client, upstream);
            _ = PumpAsync(upstream, client);
        }
    }

    private static async Task PumpAsync(TcpClient from, TcpClient to)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream());
            to.Client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (!IsCut)
        {
            await CutAsync();
        }
    }
}
