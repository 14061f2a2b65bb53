using System.Net;
using System.Net.Sockets;

namespace Heddle.Testing;

/// <summary>
/// A TCP forwarder on a loopback address of its own between an agent and the controller, which a test can cut (every
/// forwarded connection reset, new ones accepted and never answered) and restore: a network partition of one node
/// without touching the others; or close for good, as the controller's process going away (connections refused). Given
/// the controller's UDP port for heartbeat datagrams, it forwards those too (from the same port number on its own
/// address, where the agent sends them), and a cut drops them both ways as a partition would.
/// </summary>
public sealed class LinkCutter : IAsyncDisposable
{
    private readonly IPEndPoint _target;
    private readonly List<(TcpClient A, TcpClient? B)> _pairs = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly TcpListener _listener;
    private readonly Task _accepting;
    private readonly IPAddress _address;
    private readonly int _port;
    private readonly string _scheme;
    private readonly Socket? _udpFront;
    private readonly Socket? _udpBack;
    private readonly Task _relaying = Task.CompletedTask;

    public LinkCutter(Uri target, int? datagramPort = null)
    {
        _scheme = target.Scheme;
        _target = new IPEndPoint(IPAddress.Parse(target.Host), target.Port);
        for (var attempt = 0; ; attempt++)
        {
            // An address of its own (127.200.0.0 and up), so the agent's datagrams to the controller's UDP port number
            // reach this forwarder and not the controller.
            _address = new IPAddress([127, (byte)Random.Shared.Next(200, 250), (byte)Random.Shared.Next(256), (byte)Random.Shared.Next(1, 255)]);
            _listener = new TcpListener(_address, 0);
            _listener.Start();
            if (datagramPort is not { } udp)
            {
                break;
            }

            _udpFront = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                _udpFront.Bind(new IPEndPoint(_address, udp));
                _udpBack = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                _udpBack.Bind(new IPEndPoint(_address, 0));
                _relaying = Task.WhenAll(RelayAsync(_udpFront, _udpBack, () => new IPEndPoint(_target.Address, udp), remember: true),
                    RelayAsync(_udpBack, _udpFront, () => _agent, remember: false));
                break;
            }
            catch (SocketException) when (attempt < 20)
            {
                _udpFront.Dispose(); // that address and port is another forwarder's: another address
                _listener.Stop();
            }
        }

        _port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync(_listener);
    }

    private volatile IPEndPoint? _agent;

    /// <summary>Passes datagrams from one socket out of the other while the link is not cut; the front remembers who sent (the agent), for the answers.</summary>
    private async Task RelayAsync(Socket from, Socket to, Func<IPEndPoint?> target, bool remember)
    {
        var buffer = new byte[2048];
        var any = new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await from.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                if (_stop.IsCancellationRequested || e is not SocketException)
                {
                    return;
                }

                continue;
            }

            if (remember)
            {
                _agent = (IPEndPoint)received.RemoteEndPoint;
            }

            if (!IsCut && target() is { } to2)
            {
                try
                {
                    await to.SendToAsync(buffer.AsMemory(0, received.ReceivedBytes), SocketFlags.None, to2);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                }
            }
        }
    }

    /// <summary>Where the agent connects instead of the controller.</summary>
    public Uri Url => new($"{_scheme}://{_address}:{_port}/");

    public bool IsCut { get; private set; }

    private volatile bool _silent;

    /// <summary>
    /// The link goes silent and stays up: every connection stays open and nothing passes either way (what is sent is
    /// taken and dropped), new ones are accepted and never answered — a peer that hangs, or a partition that neither
    /// side is told of. <see cref="Restore"/> ends it.
    /// </summary>
    public void Silence()
    {
        lock (_pairs)
        {
            _silent = true;
            IsCut = true;
        }
    }

    /// <summary>
    /// Resets every connection through the link, and until <see cref="Restore"/> accepts new ones but passes nothing
    /// (as a partition does: connects hang; nothing refuses, which would say the controller is not running).
    /// </summary>
    public Task CutAsync()
    {
        lock (_pairs)
        {
            IsCut = true;
            foreach (var (a, b) in _pairs)
            {
                a.Client.LingerState = new LingerOption(true, 0);
                a.Dispose();
                b?.Dispose();
            }

            _pairs.Clear();
        }

        return Task.CompletedTask;
    }

    /// <summary>As the controller's process going away: every connection reset, new ones refused, for good.</summary>
    public async Task CloseAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _udpFront?.Dispose();
        _udpBack?.Dispose();
        await _relaying;
        await CutAsync();
    }

    /// <summary>Passes traffic again; connections held while cut are reset.</summary>
    public void Restore()
    {
        lock (_pairs)
        {
            IsCut = false;
            _silent = false;
            foreach (var (a, b) in _pairs)
            {
                a.Client.LingerState = new LingerOption(true, 0);
                a.Dispose();
                b?.Dispose();
            }

            _pairs.Clear();
        }
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

            lock (_pairs)
            {
                if (IsCut)
                {
                    _pairs.Add((client, null)); // held, never answered, until the link is restored
                    continue;
                }
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

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        try
        {
            var buffer = new byte[16_384];
            var source = from.GetStream();
            var target = to.GetStream();
            int n;
            while ((n = await source.ReadAsync(buffer)) > 0)
            {
                if (!_silent)
                {
                    await target.WriteAsync(buffer.AsMemory(0, n));
                }
            }

            if (!_silent)
            {
                to.Client.Shutdown(SocketShutdown.Send); // a silent link does not pass an end either
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync() => await CloseAsync();
}
