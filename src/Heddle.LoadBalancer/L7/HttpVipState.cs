namespace Heddle.LoadBalancer.L7;

/// <summary>What every loop's connections of one http VIP:port share: its answers, counters, timeouts and the count of requests in flight.</summary>
internal sealed class HttpVipState(HttpAnswers answers, HttpCounters counters, TimeSpan connectTimeout, byte[]? fallback)
{
    private int _inFlight;

    public HttpAnswers Answers { get; } = answers;

    public HttpCounters Counters { get; } = counters;

    public TimeSpan ConnectTimeout { get; } = connectTimeout;

    /// <summary>The full proxy (YARP, on loopback) that HTTP/2 connections are handed to whole; null: they are refused.</summary>
    public byte[]? Fallback { get; } = fallback;

    public int InFlight => Volatile.Read(ref _inFlight);

    public void Started() => Interlocked.Increment(ref _inFlight);

    public void Ended() => Interlocked.Decrement(ref _inFlight);
}
