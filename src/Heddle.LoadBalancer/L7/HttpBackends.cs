using System.Net;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.L4.Linux;

namespace Heddle.LoadBalancer.L7;

/// <summary>The instances of an http VIP:port as configured (swapped whole on change, read by every loop).</summary>
internal sealed record HttpPool(IReadOnlyList<Backend> Backends, byte[][] Addresses)
{
    public static readonly HttpPool Empty = new([], []);

    public static HttpPool Of(IReadOnlyList<Backend> backends) =>
        new(backends, [.. backends.Select(b => Libc.SocketAddress(new IPEndPoint(IPAddress.Parse(b.Address), b.Port)))]);
}

/// <summary>
/// One instance as one event loop sees it: its address, its kept-alive connections waiting for a request (LIFO, so the
/// warmest is reused and the others may time out at the instance), the requests this loop has on it now (for
/// PowerOfTwoChoices) and its counters. Touched on its loop only.
/// </summary>
internal sealed class HttpBackend(string id, byte[] address, HttpCounters.Backend counters)
{
    /// <summary>Idle connections kept per instance and loop; more are closed when their request is done.</summary>
    public const int MaxIdle = 512;

    private readonly List<BackendConnection> _idle = [];

    public string Id { get; } = id;

    public byte[] Address { get; } = address;

    public HttpCounters.Backend Counters { get; } = counters;

    public int InFlight { get; set; }

    /// <summary>Left the pool: its idle connections are closed and no more are kept.</summary>
    public bool Removed { get; private set; }

    public BackendConnection? TakeIdle()
    {
        while (_idle.Count > 0)
        {
            var connection = _idle[^1];
            _idle.RemoveAt(_idle.Count - 1);
            if (!connection.Closed)
            {
                return connection;
            }
        }

        return null;
    }

    /// <summary>A connection whose exchange ended cleanly: kept for the next request, or closed.</summary>
    public void Release(BackendConnection connection)
    {
        connection.Owner = null;
        if (Removed || _idle.Count >= MaxIdle || connection.HangupSeen)
        {
            connection.Close();
            return;
        }

        connection.Readable = false;
        _idle.Add(connection);
    }

    /// <summary>An idle connection the instance closed.</summary>
    public void Forget(BackendConnection connection) => _idle.Remove(connection);

    public void Remove()
    {
        Removed = true;
        foreach (var connection in _idle)
        {
            connection.Close();
        }

        _idle.Clear();
    }
}

/// <summary>
/// One loop's view of an http VIP:port's pool: rebuilt when the pool is swapped (instances that stay keep their idle
/// connections; those that left have theirs closed), and the pick of an instance per request: round robin, or the
/// less busy of two at random (YARP's PowerOfTwoChoices), skipping those a request was already sent to.
/// </summary>
internal sealed class HttpBackends(Func<HttpPool> pool, HttpCounters counters, bool twoChoices, byte[]? fallback)
{
    private HttpPool? _seen;
    private HttpBackend? _fallback;
    private HttpBackend[] _current = [];
    private uint _next;

    public HttpBackend[] Current
    {
        get
        {
            var now = pool();
            if (!ReferenceEquals(now, _seen))
            {
                Rebuild(now);
            }

            return _current;
        }
    }

    /// <summary>Where HTTP/2 connections are tunnelled (the full proxy), counted apart from the instances (it counts its own requests).</summary>
    public HttpBackend? Fallback => fallback is null ? null : _fallback ??= new HttpBackend("fallback", fallback, new HttpCounters.Backend());

    /// <summary>Takes a new pool now (posted by the listener on a swap) rather than at the next request.</summary>
    public void Refresh() => _ = Current;

    /// <summary>Closes every idle connection (the listener is stopping).</summary>
    public void Close()
    {
        foreach (var backend in _current)
        {
            backend.Remove();
        }

        _current = [];
        _seen = null;
    }

    private void Rebuild(HttpPool now)
    {
        var old = _current.ToDictionary(b => b.Id, StringComparer.Ordinal);
        var next = new HttpBackend[now.Backends.Count];
        for (var i = 0; i < next.Length; i++)
        {
            var id = now.Backends[i].Id;
            next[i] = old.Remove(id, out var kept) && kept.Address.AsSpan().SequenceEqual(now.Addresses[i]) ? kept : new HttpBackend(id, now.Addresses[i], counters.For(id));
        }

        foreach (var gone in old.Values)
        {
            gone.Remove();
        }

        _current = next;
        _seen = now;
    }

    /// <summary>An instance for a request, not one of <paramref name="tried"/> while there is another; null when the pool is empty.</summary>
    public HttpBackend? Pick(List<HttpBackend>? tried)
    {
        var all = Current;
        if (all.Length == 0)
        {
            return null;
        }

        if (twoChoices && all.Length > 1)
        {
            var a = Untried(all, (uint)Random.Shared.Next(all.Length), tried);
            var b = Untried(all, (uint)Random.Shared.Next(all.Length), tried);
            return b.InFlight < a.InFlight ? b : a;
        }

        return Untried(all, _next++, tried);
    }

    private static HttpBackend Untried(HttpBackend[] all, uint start, List<HttpBackend>? tried)
    {
        for (var k = 0; k < all.Length && tried is not null; k++)
        {
            var candidate = all[(start + k) % all.Length];
            if (!tried.Contains(candidate))
            {
                return candidate;
            }
        }

        return all[start % all.Length];
    }
}
