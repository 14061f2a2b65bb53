namespace Heddle.LoadBalancer;

/// <summary>How the load balancer runs; defaults in the initialisers.</summary>
public sealed record LoadBalancerOptions
{
    /// <summary>How long connections to a backend that left the pool may go on before they are closed. Default 30 s.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A backend that does not accept within this is given up for the connection. Default 3 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>How http endpoints pick an instance: RoundRobin (default) or PowerOfTwoChoices (YARP's policy names).</summary>
    public string HttpPolicy { get; init; } = Yarp.ReverseProxy.LoadBalancing.LoadBalancingPolicies.RoundRobin;

    /// <summary>
    /// Event-loop threads for the L4 (tcp) listeners, each accepting on every VIP:port through SO_REUSEPORT. Default 1,
    /// which serves tens of thousands of requests per second and leaves the other cores to the controller and the
    /// instances; raise it on a host that does nothing but balance.
    /// </summary>
    public int L4Threads { get; init; } = 1;

    /// <summary>
    /// How long an event loop (L4 and L7) that has run out of events keeps polling for the next before it sleeps
    /// (HAProxy's `busy-polling`, Linux's busy_poll, bounded): under load the next event is microseconds away, and a loop
    /// that sleeps for it is woken late. Default 20 µs; zero sleeps at once, for the least CPU on a host shared with
    /// busy instances.
    /// </summary>
    public TimeSpan BusyPoll { get; init; } = TimeSpan.FromMicroseconds(20);

    /// <summary>A tcp (L4) connection with no byte in either direction for this long is closed (HAProxy's `timeout client`). Default 5 min.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// An http (L7) client that has begun a request head and not finished it within this gets 408 and is closed, however
    /// slowly it keeps sending (HAProxy's `timeout http-request`, Kestrel's RequestHeadersTimeout). A kept-alive connection
    /// waiting for its next request is under the idle timeout alone. Default 30 s.
    /// </summary>
    public TimeSpan HeadTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Open tcp connections one VIP:port holds at most; more are reset at once. Default 20,000.</summary>
    public int MaxConnectionsPerVip { get; init; } = 20_000;

    /// <summary>Open tcp connections one client address may hold on one VIP:port; more are reset at once. Default 1,000.</summary>
    public int MaxConnectionsPerClient { get; init; } = 1_000;
}
