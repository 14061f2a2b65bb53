namespace Heddle.LoadBalancer.L4;

/// <summary>One accepted client connection, as its <see cref="TcpAcceptor"/> tracks it: L4's <see cref="TcpRelay"/> or L7's pass-through.</summary>
internal interface IRelay
{
    /// <summary>The instance this connection's traffic goes to now (null when it is between requests).</summary>
    string? BackendId { get; }

    /// <summary>When either side last had something to say (Environment.TickCount64).</summary>
    long LastActivity { get; }

    /// <summary>The client's address, as the acceptor counts connections per client.</summary>
    UInt128 Client { get; init; }

    /// <summary>Starts watching the client. Returns false if it could not be watched.</summary>
    bool Start();

    /// <summary>Ends the connection now (drain timeout, shutdown).</summary>
    void Close();

    /// <summary>Silent for the idle timeout: closed (L7 first answers a request still waiting for its instance with 504).</summary>
    void Expire();

    /// <summary>Since when (Environment.TickCount64) a request head has been arriving and is not complete yet; 0 when none is (always, at L4).</summary>
    long HeadSince => 0;

    /// <summary>A request head still not complete after the head timeout: answered 408 and closed.</summary>
    void ExpireHead()
    {
    }
}

/// <summary>
/// Makes the relay for a connection just accepted from <paramref name="address"/>:<paramref name="port"/> (the acceptor's
/// key for that address: <paramref name="key"/>; the relay calls <paramref name="ended"/> once closed), or returns null
/// to refuse it (L4 with no backend: the client is reset).
/// </summary>
internal delegate IRelay? RelayFactory(int client, ReadOnlySpan<byte> address, int port, UInt128 key, Action<IRelay> ended);
