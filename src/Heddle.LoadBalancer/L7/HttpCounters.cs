using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Heddle.LoadBalancer.L7;

/// <summary>
/// Requests an http VIP:port forwarded, by instance and status class, and forwards that failed, by YARP's error.
/// Requests run on any thread, so each count is one interlocked increment on a counter found by the instance's id
/// (a lookup of a string the proxy already holds: nothing is allocated per request once an instance has been seen).
/// </summary>
internal sealed class HttpCounters
{
    private readonly ConcurrentDictionary<string, Backend> _backends = new(StringComparer.Ordinal);
    private long _noBackend;

    internal sealed class Backend
    {
        /// <summary>Index 1..5: responses 1xx..5xx; 0: anything else.</summary>
        public readonly long[] ByStatusClass = new long[6];

        /// <summary>Indexed by <see cref="ForwarderError"/>.</summary>
        public readonly long[] Errors = new long[ErrorNames.Length];

        /// <summary>Bytes the pass-through passed on: to the instance (requests, as forwarded), and from it to clients.</summary>
        public long BytesIn, BytesOut;

        /// <summary>One response passed on with <paramref name="status"/>.</summary>
        public void Answered(int status)
        {
            status /= 100;
            Interlocked.Increment(ref ByStatusClass[status is >= 1 and <= 5 ? status : 0]);
        }

        public void Failed(ForwarderError error) => Interlocked.Increment(ref Errors[(int)error]);

        /// <summary><paramref name="count"/> bytes passed on to the instance.</summary>
        public void SentIn(int count) => Interlocked.Add(ref BytesIn, count);

        /// <summary><paramref name="count"/> bytes of the instance's passed on to the client.</summary>
        public void SentOut(int count) => Interlocked.Add(ref BytesOut, count);
    }

    /// <summary>The counters of one instance, made when it is first seen (the pass-through keeps the reference per loop).</summary>
    public Backend For(string destination) => _backends.GetOrAdd(destination, static _ => new Backend());

    public static readonly string[] ErrorNames = Enum.GetNames<ForwarderError>();

    /// <summary>Answered 503 with no Ready instance to send to.</summary>
    public void NoBackend() => Interlocked.Increment(ref _noBackend);

    /// <summary>Counts one request, after the proxy is done with it (retries included: the last instance tried).</summary>
    public void Count(HttpContext context, string? destination)
    {
        // "unknown": the proxy chose no instance (none is the label of the 503 with no healthy instance, counted apart).
        var backend = _backends.GetOrAdd(destination ?? "unknown", static _ => new Backend());
        var status = context.Response.StatusCode / 100;
        Interlocked.Increment(ref backend.ByStatusClass[status is >= 1 and <= 5 ? status : 0]);
        if (context.Features.Get<IForwarderErrorFeature>() is { } failure && (int)failure.Error < backend.Errors.Length)
        {
            Interlocked.Increment(ref backend.Errors[(int)failure.Error]);
        }
    }

    public long ReadNoBackend() => Volatile.Read(ref _noBackend);

    public IEnumerable<KeyValuePair<string, Backend>> Read() => _backends;

    /// <summary>Instances gone from the pool, their drain over: not reported any more.</summary>
    public void Forget(IEnumerable<string> gone)
    {
        foreach (var id in gone)
        {
            _backends.TryRemove(id, out _);
        }
    }
}
