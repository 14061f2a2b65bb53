using Heddle.Contracts.Api;
using Heddle.LoadBalancer.L4;

namespace Heddle.LoadBalancer;

/// <summary>
/// The data plane: one listener per VIP and input port, reconfigured from whole configurations. A listener that
/// stays keeps its established connections across every change; one that goes stops accepting and closes.
/// HTTP endpoints are relayed at L4 too for now (the YARP L7 path is the rest of issue 6).
/// </summary>
public sealed class LoadBalancerHost(LoadBalancerOptions options) : IAsyncDisposable
{
    private readonly Dictionary<string, TcpVipListener> _listeners = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _lock = new(1, 1);

    public IReadOnlyCollection<string> Listening
    {
        get
        {
            lock (_listeners)
            {
                return [.. _listeners.Keys];
            }
        }
    }

    /// <summary>Applies a whole configuration. A listener that cannot bind is reported and the others still apply.</summary>
    public async Task<IReadOnlyList<string>> ApplyAsync(LoadBalancerConfig config)
    {
        var problems = new List<string>();
        await _lock.WaitAsync();
        try
        {
            var wanted = config.Listeners.ToDictionary(l => l.Key, StringComparer.Ordinal);
            List<TcpVipListener> removed;
            lock (_listeners)
            {
                removed = [.. _listeners.Where(l => !wanted.ContainsKey(l.Key)).Select(l => l.Value)];
                foreach (var key in _listeners.Keys.Where(k => !wanted.ContainsKey(k)).ToList())
                {
                    _listeners.Remove(key);
                }
            }

            foreach (var listener in removed)
            {
                await listener.DisposeAsync();
            }

            foreach (var (key, listener) in wanted)
            {
                TcpVipListener? existing;
                lock (_listeners)
                {
                    _listeners.TryGetValue(key, out existing);
                }

                if (existing is not null)
                {
                    existing.Update(listener.Backends);
                    continue;
                }

                try
                {
                    var started = new TcpVipListener(listener, options);
                    lock (_listeners)
                    {
                        _listeners[key] = started;
                    }
                }
                catch (System.Net.Sockets.SocketException e)
                {
                    problems.Add($"{listener.Service} {key}: cannot listen ({e.Message})");
                }
            }
        }
        finally
        {
            _lock.Release();
        }

        return problems;
    }

    public async ValueTask DisposeAsync()
    {
        List<TcpVipListener> all;
        lock (_listeners)
        {
            all = [.. _listeners.Values];
            _listeners.Clear();
        }

        foreach (var listener in all)
        {
            await listener.DisposeAsync();
        }
    }
}
