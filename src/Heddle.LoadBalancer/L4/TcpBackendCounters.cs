namespace Heddle.LoadBalancer.L4;

/// <summary>
/// What the relays of one event loop did with one backend of one VIP:port. Only that loop's thread writes (plain
/// increments: no lock, no interlocked instruction, nothing allocated per connection or read); a scrape reads from
/// another thread, where a 64-bit read is never torn and a figure a few reads old is fine. Padded so that two loops'
/// counters never share a cache line.
/// </summary>
internal sealed class TcpBackendCounters
{
#pragma warning disable CS0169, IDE0051 // padding
    private readonly long _before0, _before1, _before2, _before3, _before4, _before5, _before6, _before7;
#pragma warning restore CS0169, IDE0051

    /// <summary>Connections established to the backend.</summary>
    public long Connections;

    /// <summary>Connection attempts the backend refused, reset or did not answer in time.</summary>
    public long ConnectFailures;

    /// <summary>Established connections that ended in an error (either side reset, a send failed).</summary>
    public long Errors;

    /// <summary>Bytes read from clients and relayed to the backend.</summary>
    public long BytesIn;

    /// <summary>Bytes read from the backend and relayed to clients.</summary>
    public long BytesOut;

#pragma warning disable CS0169, IDE0051 // padding
    private readonly long _after0, _after1, _after2, _after3, _after4, _after5, _after6, _after7;
#pragma warning restore CS0169, IDE0051
}
