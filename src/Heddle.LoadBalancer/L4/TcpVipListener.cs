using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.LoadBalancing;

namespace Heddle.LoadBalancer.L4;

/// <summary>
/// The L4 proxy for one VIP:port. Each new connection picks a backend by the Maglev lookup of its flow hash, so
/// flows spread evenly and removing one of N backends moves only about 1/N of new flows; an established connection
/// stays on its backend. With no backend the client is reset at once. A backend that leaves the pool is drained:
/// no new connections, and its existing ones are closed after the drain timeout.
/// </summary>
internal sealed class TcpVipListener : IVipListener
{
    private readonly Socket _listener;
    private readonly LoadBalancerOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<TcpRelay, byte> _relays = new();
    private readonly Task _accepting;
    private volatile Pool _pool;

    private sealed record Pool(MaglevTable Table, IReadOnlyList<Backend> Backends, IPEndPoint[] Endpoints);

    public TcpVipListener(VipListener config, LoadBalancerOptions options)
    {
        _options = options;
        _pool = new Pool(new MaglevTable([]), [], []);
        var endpoint = new IPEndPoint(IPAddress.Parse(config.Vip), config.Port);
        _listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Bind(endpoint);
        _listener.Listen(1024);
        Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
        Update(config.Backends);
        _accepting = AcceptAsync();
    }

    public IPEndPoint Endpoint { get; }

    public int OpenConnections => _relays.Count;

    /// <summary>Swaps the pool; connections to backends that left it drain.</summary>
    public void Update(IReadOnlyList<Backend> backends)
    {
        var ordered = backends.OrderBy(b => b.Id, StringComparer.Ordinal).ToList();
        var previous = _pool;
        _pool = new Pool(new MaglevTable([.. ordered.Select(b => b.Id)]), ordered, [.. ordered.Select(b => new IPEndPoint(IPAddress.Parse(b.Address), b.Port))]);
        var gone = previous.Backends.Select(b => b.Id).Except(ordered.Select(b => b.Id)).ToHashSet(StringComparer.Ordinal);
        if (gone.Count > 0)
        {
            _ = DrainAsync(gone);
        }
    }

    private async Task DrainAsync(HashSet<string> backends)
    {
        try
        {
            await Task.Delay(_options.DrainTimeout, _stop.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        var current = _pool.Backends.Select(b => b.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var relay in _relays.Keys.Where(r => backends.Contains(r.BackendId) && !current.Contains(r.BackendId)))
        {
            relay.Close();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }

            _ = HandleAsync(client);
        }
    }

    private async Task HandleAsync(Socket client)
    {
        client.NoDelay = true;
        var pool = _pool;
        var choice = pool.Table.Lookup(FlowHash.Of((IPEndPoint)client.RemoteEndPoint!, (IPEndPoint)client.LocalEndPoint!));
        if (choice < 0)
        {
            Reset(client);
            return;
        }

        // The chosen backend first; if it does not accept, one other (the pool may not know yet that it died).
        for (var attempt = 0; attempt < Math.Min(2, pool.Backends.Count); attempt++)
        {
            var index = (choice + attempt) % pool.Backends.Count;
            var backend = pool.Backends[index];
            var upstream = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(_options.ConnectTimeout);
                await upstream.ConnectAsync(pool.Endpoints[index], timeout.Token);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                upstream.Dispose();
                continue;
            }

            var relay = new TcpRelay(client, upstream, backend.Id, _options.BufferSize);
            _relays[relay] = 0;
            try
            {
                await relay.RunAsync();
            }
            finally
            {
                _relays.TryRemove(relay, out _);
            }

            return;
        }

        Reset(client);
    }

    /// <summary>Refuses a connection at once: the client sees a reset, not a hang.</summary>
    private static void Reset(Socket client)
    {
        try
        {
            client.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }

        client.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accepting;
        foreach (var relay in _relays.Keys)
        {
            relay.Close();
        }
    }
}
