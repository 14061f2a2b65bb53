using System.Buffers.Text;
using System.Net;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.L4;
using Heddle.LoadBalancer.L4.Linux;
using Heddle.LoadBalancer.LoadBalancing;

namespace Heddle.LoadBalancer.L7;

/// <summary>
/// The L7 proxy for one http VIP:port: HTTP/1.x passed through on the L4 event loops (a <see cref="TcpAcceptor"/> per
/// loop making an <see cref="HttpConnection"/> per client connection, each loop keeping its own idle connections to
/// the instances in <see cref="HttpBackends"/>), and HTTP/2 connections tunnelled whole to <see cref="YarpFallback"/>.
/// The instances are swapped whole on change; requests in flight to a removed instance may finish for the drain
/// timeout, then their client connections are closed. No instance: 503 with a short problem body.
/// </summary>
internal sealed class HttpVipListener : IVipListener
{
    private readonly IReadOnlyList<EventLoop> _ownedLoops;
    private readonly List<(TcpAcceptor Acceptor, HttpBackends Backends, EventLoop Loop)> _acceptors = [];
    private readonly YarpFallback _fallback;
    private readonly HttpVipState _state;
    private readonly DrainSchedule _drain;
    private readonly CancellationTokenSource _stop = new();
    private volatile HttpPool _pool = HttpPool.Empty;

    private HttpVipListener(VipListener config, LoadBalancerOptions options, IReadOnlyList<EventLoop> loops, bool owned, YarpFallback fallback, HttpCounters counters)
    {
        _ownedLoops = owned ? loops : [];
        _fallback = fallback;
        Counters = counters;
        _state = new HttpVipState(new HttpAnswers(config.Service, config.Port), counters, options.ConnectTimeout, Libc.SocketAddress(fallback.Endpoint));
        _drain = new DrainSchedule(options.DrainTimeout, () => _pool.Backends.Select(b => b.Id).ToHashSet(StringComparer.Ordinal), gone =>
        {
            _acceptors.ForEach(a => a.Acceptor.Close(gone));
            counters.Forget(gone);
        }, _stop.Token);
        var twoChoices = options.HttpPolicy == Yarp.ReverseProxy.LoadBalancing.LoadBalancingPolicies.PowerOfTwoChoices;
        try
        {
            // The first binds the port (port 0: any free one); the others share the port it got.
            var endpoint = new IPEndPoint(IPAddress.Parse(config.Vip), config.Port);
            foreach (var loop in loops)
            {
                var backends = new HttpBackends(() => _pool, counters, twoChoices, _state.Fallback);
                var acceptor = new TcpAcceptor(endpoint, shared: loops.Count > 1, loop, _ => Connections(loop, backends),
                    new TcpAcceptor.Limits(options.IdleTimeout, Math.Max(1, options.MaxConnectionsPerVip / loops.Count), options.MaxConnectionsPerClient, options.HeadTimeout));
                _acceptors.Add((acceptor, backends, loop));
                endpoint = acceptor.Endpoint;
            }

            Endpoint = endpoint;
            Update(config.Backends);
        }
        catch
        {
            Task.WhenAll(_acceptors.Select(a => a.Acceptor.StopAsync())).GetAwaiter().GetResult();
            foreach (var loop in _ownedLoops)
            {
                loop.Dispose();
            }

            throw;
        }
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>Requests forwarded and failed, for the metrics (the pass-through's and the fallback's).</summary>
    public HttpCounters Counters { get; }

    /// <summary>Requests being forwarded now.</summary>
    public int InFlight => _state.InFlight + _fallback.InFlight;

    /// <summary>A listener on a loop of its own (tests, single listeners).</summary>
    public static Task<HttpVipListener> StartAsync(VipListener listener, LoadBalancerOptions options) => StartAsync(listener, options, null);

    /// <summary>A listener accepting on <paramref name="loops"/> (the host's L4 loops), or on one of its own when null.</summary>
    public static async Task<HttpVipListener> StartAsync(VipListener listener, LoadBalancerOptions options, IReadOnlyList<EventLoop>? loops)
    {
        var counters = new HttpCounters();
        var fallback = await YarpFallback.StartAsync(listener, options, counters);
        try
        {
            return loops is null
                ? new HttpVipListener(listener, options, [new EventLoop("heddle-l7", options.BusyPoll)], owned: true, fallback, counters)
                : new HttpVipListener(listener, options, loops, owned: false, fallback, counters);
        }
        catch
        {
            await fallback.DisposeAsync();
            throw;
        }
    }

    private RelayFactory Connections(EventLoop loop, HttpBackends backends) => (client, address, port, key, ended) =>
        new HttpConnection(loop, client, backends, _state, ForwardedFor(address), ended) { Client = key };

    /// <summary>The client's address as X-Forwarded-For gives it (IPv4 formatted here, without an IPAddress and a string per connection).</summary>
    private static byte[] ForwardedFor(ReadOnlySpan<byte> address)
    {
        if (address.Length != 4)
        {
            return System.Text.Encoding.ASCII.GetBytes(new IPAddress(address).ToString());
        }

        Span<byte> text = stackalloc byte[15];
        var length = 0;
        for (var i = 0; i < 4; i++)
        {
            if (i > 0)
            {
                text[length++] = (byte)'.';
            }

            Utf8Formatter.TryFormat(address[i], text[length..], out var written);
            length += written;
        }

        return text[..length].ToArray();
    }

    /// <summary>Swaps the instances; requests still running on removed ones after the drain timeout are closed.</summary>
    public void Update(IReadOnlyList<Backend> backends)
    {
        var previous = _pool;
        _pool = HttpPool.Of(backends);
        foreach (var (_, loopBackends, loop) in _acceptors)
        {
            loop.Post(loopBackends.Refresh); // idle connections to removed instances close now, not at the next request
        }

        _fallback.Update(backends);
        _drain.Changed(previous.Backends.Select(b => b.Id), backends.Select(b => b.Id));
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync();
        await Task.WhenAll(_acceptors.Select(a => a.Acceptor.StopAsync()));
        foreach (var (_, backends, loop) in _acceptors)
        {
            await loop.InvokeAsync(backends.Close);
        }

        foreach (var loop in _ownedLoops)
        {
            loop.Dispose();
        }

        await _fallback.DisposeAsync();
    }
}
