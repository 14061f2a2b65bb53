using System.Diagnostics.Metrics;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.Health;
using Heddle.LoadBalancer.L4;
using Heddle.LoadBalancer.L4.Linux;
using Heddle.LoadBalancer.L7;
using Heddle.LoadBalancer.Metrics;

namespace Heddle.LoadBalancer;

/// <summary>
/// The data plane: one listener per VIP and input port, reconfigured from whole configurations: `tcp` endpoints
/// through the L4 proxy, `http` endpoints through the L7 pass-through on the same event loops (YARP for HTTP/2), each
/// behind its own health checks of the backends. A listener that stays keeps its established connections across every
/// change; one that goes stops accepting and closes.
/// With a meter factory, what the listeners count is reported as instruments of its scope (meter <c>Heddle.LoadBalancer</c>).
/// </summary>
public sealed class LoadBalancerHost : IAsyncDisposable
{
    private readonly LoadBalancerOptions _options;
    /// <summary>Each listener, with the part of the configuration it was last given (<c>Applied</c>).</summary>
    private readonly Dictionary<string, (string Protocol, BackendHealth Listener, string Service, VipListener Applied)> _listeners = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _lock = new(1, 1);
    private EventLoop[]? _tcpLoops; // shared by every L4 listener, made with the first

    /// <summary>The clock of every listener's probes: one timer turning for all backends, not one (and a timeout) each.</summary>
    private readonly Heddle.Contracts.Timing.SharedClock _probes = new(TimeProvider.System, TimeSpan.FromMilliseconds(10));

    public LoadBalancerHost(LoadBalancerOptions options, IMeterFactory? meters = null)
    {
        _options = options;
        if (meters is not null)
        {
            _ = new LoadBalancerMetrics(meters, Listeners);
        }
    }

    private IReadOnlyList<(string Service, string Vip, BackendHealth Health)> Listeners()
    {
        lock (_listeners)
        {
            return [.. _listeners.Select(l => (l.Value.Service, l.Key, l.Value.Listener))];
        }
    }

    /// <summary>Applies a whole configuration. A listener that cannot bind is reported and the others still apply.</summary>
    public async Task<IReadOnlyList<ListenerProblem>> ApplyAsync(LoadBalancerConfig config)
    {
        var problems = new List<ListenerProblem>();
        await _lock.WaitAsync();
        try
        {
            // One listener per VIP and port. A configuration naming one twice (a controller's bug, or a hand-written
            // one) must not take the balancer down: the first keeps it, the other is reported.
            var wanted = new Dictionary<string, VipListener>(StringComparer.Ordinal);
            foreach (var listener in config.Listeners)
            {
                if (!wanted.TryAdd(listener.Key, listener))
                {
                    problems.Add(new ListenerProblem(listener.Service, listener.Vip, listener.Port,
                        $"{listener.Key} is {wanted[listener.Key].Service}'s in the same configuration; one listener per VIP and port", ListenerProblemKinds.Other));
                }
            }

            List<BackendHealth> removed;
            lock (_listeners)
            {
                var gone = _listeners.Where(l => !wanted.TryGetValue(l.Key, out var w) || w.Protocol != l.Value.Protocol).Select(l => l.Key).ToList();
                removed = [.. gone.Select(k => _listeners[k].Listener)];
                gone.ForEach(k => _listeners.Remove(k));
            }

            foreach (var listener in removed)
            {
                await listener.DisposeAsync();
            }

            foreach (var (key, listener) in wanted)
            {
                BackendHealth? existing;
                bool same;
                lock (_listeners)
                {
                    (existing, same) = _listeners.TryGetValue(key, out var entry) ? (entry.Listener, ReferenceEquals(entry.Applied, listener)) : (null, false);
                }

                if (existing is not null)
                {
                    // A change names every listener, but a follower's copy keeps an unchanged service's parts as the same
                    // objects: only the listeners of the services that changed are updated, not all of them per change.
                    if (!same)
                    {
                        existing.Update(listener.Backends, listener.Probe);
                        lock (_listeners)
                        {
                            _listeners[key] = _listeners[key] with { Applied = listener };
                        }
                    }

                    continue;
                }

                try
                {
                    // Both run on the same event loops: L7's HTTP/1.x pass-through is an L4 relay that reads the heads.
                    var loops = _tcpLoops ??= TcpVipListener.StartLoops(_options);
                    IVipListener proxy = listener.Protocol == "http"
                        ? await HttpVipListener.StartAsync(listener with { Backends = [] }, _options, loops)
                        : new TcpVipListener(listener with { Backends = [] }, _options, loops);
                    var started = new BackendHealth(proxy, _probes);
                    started.Update(listener.Backends, listener.Probe);
                    lock (_listeners)
                    {
                        _listeners[key] = (listener.Protocol, started, listener.Service, listener);
                    }
                }
                catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
                {
                    problems.Add(new ListenerProblem(listener.Service, listener.Vip, listener.Port, e.Message, KindOf(e)));
                }
            }
        }
        finally
        {
            _lock.Release();
        }

        return problems;
    }

    /// <summary>
    /// The data plane's own check: every L4 event loop runs a no-op within <paramref name="timeout"/> (a loop stuck or
    /// dead would leave every connection of its listeners unanswered). Null when healthy, else why not. An announcing
    /// balancer withdraws its VIPs while this fails.
    /// </summary>
    public async Task<string?> CheckAsync(TimeSpan timeout)
    {
        var loops = _tcpLoops ?? [];
        for (var i = 0; i < loops.Length; i++)
        {
            var ran = loops[i].InvokeAsync(() => { });
            if (await Task.WhenAny(ran, Task.Delay(timeout)) != ran || ran.IsFaulted)
            {
                return $"L4 event loop {i} did not run a check within {timeout.TotalSeconds:0.#} s";
            }
        }

        return null;
    }

    internal IReadOnlyList<EventLoop> Loops => _tcpLoops ?? [];

    /// <summary>What a bind error means: EADDRINUSE (something else listens there) or EADDRNOTAVAIL (not an address of this host).</summary>
    internal static string KindOf(Exception e)
    {
        for (var x = (Exception?)e; x is not null; x = x.InnerException)
        {
            if (x is System.Net.Sockets.SocketException s)
            {
                return s.SocketErrorCode switch
                {
                    System.Net.Sockets.SocketError.AddressAlreadyInUse => ListenerProblemKinds.InUse,
                    System.Net.Sockets.SocketError.AddressNotAvailable => ListenerProblemKinds.NotLocal,
                    _ => ListenerProblemKinds.Other,
                };
            }

            if (x.GetType().Name == "AddressInUseException")
            {
                return ListenerProblemKinds.InUse; // Kestrel's
            }
        }

        return ListenerProblemKinds.Other;
    }

    public async ValueTask DisposeAsync()
    {
        List<BackendHealth> all;
        lock (_listeners)
        {
            all = [.. _listeners.Values.Select(v => v.Listener)];
            _listeners.Clear();
        }

        foreach (var listener in all)
        {
            await listener.DisposeAsync();
        }

        foreach (var loop in _tcpLoops ?? [])
        {
            loop.Dispose();
        }

        _probes.Dispose();
    }
}
