using System.Net;
using System.Net.Sockets;
using Heddle.Contracts.Agents;

namespace Heddle.Agent.Connection;

/// <summary>
/// One session's heartbeats as UDP datagrams (the controller's offer on the stream: where, a stream id, a key), and
/// whether they carry: each keepalive says the highest sequence the controller heard, and while that has moved within
/// <see cref="Window"/> the stream carries no heartbeats. When it has not (UDP dropped on the way, the controller's port
/// closed), heartbeats go on the stream again, the datagrams still beside them, so the node is heard either way and
/// the datagrams take over again when they arrive. Times are in <see cref="FenceClock.Millis"/>.
/// </summary>
internal sealed class DatagramHeartbeats
{
    /// <summary>
    /// How long the controller may go without saying it heard a datagram before heartbeats go on the stream again: well
    /// inside a node timeout (10 s by default; the node is unheard for at most this and a keepalive's period), and above
    /// a keepalive's period, so a keepalive or two held up on a busy controller do not double its heartbeats.
    /// </summary>
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(3);

    private static readonly Lock Opening = new();
    private static Socket? _v4;
    private static Socket? _v6;

    private readonly SocketAddress _to;
    private readonly ulong _stream;
    private readonly byte[] _key;
    private long _firstSent = -1;
    private long _heardAt = -1;
    private long _heard;
    private bool _told;

    private DatagramHeartbeats(IPEndPoint to, ulong stream, byte[] key)
    {
        To = to;
        _to = to.Serialize();
        _stream = stream;
        _key = key;
    }

    /// <summary>Where they go.</summary>
    public IPEndPoint To { get; }

    /// <summary>The heartbeats an offer describes; null for an offer that makes no sense (then the stream carries them).</summary>
    public static DatagramHeartbeats? From(HeartbeatDatagramOffer offer) =>
        offer.Key.Length == HeartbeatDatagram.KeyLength && IPAddress.TryParse(offer.Address, out var address) && offer.Port is > 0 and <= IPEndPoint.MaxPort
            ? new DatagramHeartbeats(new IPEndPoint(address, offer.Port), offer.Stream, offer.Key.ToByteArray())
            : null;

    /// <summary>Sends heartbeat <paramref name="sequence"/>; false when the system refused it (no route, say).</summary>
    public bool Send(long sequence, long now)
    {
        Span<byte> datagram = stackalloc byte[HeartbeatDatagram.Length];
        HeartbeatDatagram.Write(datagram, _stream, sequence, _key);
        if (_firstSent < 0)
        {
            _firstSent = now;
        }

        try
        {
            return Socket(To.AddressFamily).SendTo(datagram, SocketFlags.None, _to) == datagram.Length;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>A keepalive said the controller heard up to <paramref name="sequence"/>.</summary>
    public void Heard(long sequence, long now)
    {
        if (sequence > Volatile.Read(ref _heard))
        {
            Volatile.Write(ref _heard, sequence);
            Volatile.Write(ref _heardAt, now);
            _told = false;
        }
    }

    /// <summary>Whether the datagrams carry the heartbeats now: the controller said it heard a newer one within <see cref="Window"/>.</summary>
    public bool Carry(long now) => Volatile.Read(ref _heardAt) is var at and >= 0 && now - at <= (long)Window.TotalMilliseconds;

    /// <summary>True once each time the datagrams stop being heard (or never were, a window after the first): for the log.</summary>
    public bool NewlyUnheard(long now)
    {
        if (_told || _firstSent < 0 || Carry(now) || now - Math.Max(_firstSent, Volatile.Read(ref _heardAt)) <= (long)Window.TotalMilliseconds)
        {
            return false;
        }

        _told = true;
        return true;
    }

    /// <summary>One unbound socket per address family, for every session (and every hollow node) of the process.</summary>
    private static Socket Socket(AddressFamily family)
    {
        ref var socket = ref family == AddressFamily.InterNetworkV6 ? ref _v6 : ref _v4;
        if (Volatile.Read(ref socket) is { } open)
        {
            return open;
        }

        lock (Opening)
        {
            return socket ??= new Socket(family, SocketType.Dgram, ProtocolType.Udp);
        }
    }
}
