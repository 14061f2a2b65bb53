using System.Net;
using System.Net.Sockets;
using Heddle.Contracts.Agents;

namespace Heddle.Agent.Connection;

/// <summary>
/// One session's heartbeats as UDP datagrams (the controller's offer on the stream: where, a stream id, a key), and
/// whether they carry. The controller answers each it hears with a datagram of the same key, and that answer is heard
/// as its keepalive. While an answer came within <see cref="Window"/>, the stream carries no heartbeats. When none did (UDP dropped either way, the controller's port closed), heartbeats go on
/// the stream again, the datagrams still beside them, so the node is heard either way; a heartbeat on the stream tells
/// the controller to send its keepalives there too; and the datagrams take over again when answers come. Times are in
/// <see cref="FenceClock.Millis"/>.
/// </summary>
internal sealed class DatagramHeartbeats : IDisposable
{
    /// <summary>The longest <see cref="Window"/>: a third of the default fence time (10 s), which a node timeout matches.</summary>
    public static readonly TimeSpan LongestWindow = TimeSpan.FromSeconds(3);

    private readonly SocketAddress _to;
    private readonly HeartbeatMac _sending; // the writer's
    private readonly HeartbeatMac _checking; // the answers' reader's, but for its disposal: under a lock of its own
    private bool _ended;
    private readonly Func<long> _answered;
    private readonly long _window;
    private long _firstSent = -1;
    private long _answeredAt = -1;
    private long _answeredSequence;
    private long _keepaliveHeardAt = long.MinValue / 2;
    private long _keepaliveSequence;
    private bool _told;

    private DatagramHeartbeats(IPEndPoint to, ulong stream, byte[] key, TimeSpan window, Func<long> answered)
    {
        Window = window;
        _window = (long)window.TotalMilliseconds;
        To = to;
        _to = to.Serialize();
        Stream = stream;
        _sending = HeartbeatDatagram.Mac(key);
        _checking = HeartbeatDatagram.Mac(key);
        _answered = answered;
    }

    /// <summary>
    /// How long the controller may go without saying it heard a datagram before heartbeats go on the stream again: well
    /// inside the node timeout (the node is unheard for at most this and a heartbeat's period), and above two periods,
    /// so an answer lost or late does not double the heartbeats: <see cref="WindowFor"/>.
    /// </summary>
    public TimeSpan Window { get; }

    /// <summary>A third of <paramref name="fenceAfter"/> (which the controller's node timeout matches), at most <see cref="LongestWindow"/>, at least two heartbeats.</summary>
    public static TimeSpan WindowFor(TimeSpan fenceAfter, TimeSpan heartbeat) =>
        TimeSpan.FromTicks(Math.Max(Math.Min(fenceAfter.Ticks / 3, LongestWindow.Ticks), 2 * heartbeat.Ticks));

    /// <summary>Where they go.</summary>
    public IPEndPoint To { get; }

    /// <summary>The stream's id, in each datagram.</summary>
    public ulong Stream { get; }

    /// <summary>
    /// The heartbeats an offer describes, taking answers until disposed; <paramref name="answered"/> is called at each
    /// answer (the controller heard) and gives the time of it. They go to <paramref name="controller"/> (the address the
    /// agent was given for the controller) when that is an IP address, as the stream does, else to the address the
    /// controller says it was reached at; at the port offered. Null for an offer that makes no sense (then the stream
    /// carries them).
    /// </summary>
    public static DatagramHeartbeats? Open(HeartbeatDatagramOffer offer, Uri controller, TimeSpan window, Func<long> answered)
    {
        if (offer.Key.Length != HeartbeatDatagram.KeyLength || offer.Port is <= 0 or > IPEndPoint.MaxPort
            || !(IPAddress.TryParse(controller.IdnHost, out var address) || IPAddress.TryParse(offer.Address, out address)))
        {
            return null;
        }

        var beats = new DatagramHeartbeats(new IPEndPoint(address, offer.Port), offer.Stream, offer.Key.ToByteArray(), window, answered);
        return HeartbeatSockets.Add(beats) ? beats : null;
    }

    /// <summary>Sends heartbeat <paramref name="sequence"/>; false when the system refused it (no route, say).</summary>
    public bool Send(long sequence, long now)
    {
        Span<byte> datagram = stackalloc byte[HeartbeatDatagram.Length];
        HeartbeatDatagram.Write(datagram, answer: false, Stream, sequence, _sending);
        if (_firstSent < 0)
        {
            _firstSent = now;
        }

        try
        {
            return HeartbeatSockets.For(To.AddressFamily).SendTo(datagram, SocketFlags.None, _to) == datagram.Length;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>An answer naming this stream came: heard when its MAC is this stream's.</summary>
    internal void Answer(ReadOnlySpan<byte> datagram, long sequence)
    {
        lock (_checking)
        {
            if (_ended || !HeartbeatDatagram.Verify(datagram, _checking))
            {
                return;
            }
        }

        Answered(sequence, _answered());
    }

    /// <summary>The controller answered heartbeat <paramref name="sequence"/>.</summary>
    public void Answered(long sequence, long now)
    {
        if (sequence > Interlocked.Read(ref _answeredSequence))
        {
            Interlocked.Exchange(ref _answeredSequence, sequence);
            Interlocked.Exchange(ref _answeredAt, now);
            _told = false;
        }
    }

    /// <summary>
    /// A keepalive on the stream said the controller heard heartbeats up to <paramref name="sequence"/>: one above every
    /// answer that came says its answers are what is lost.
    /// </summary>
    public void KeepaliveSaid(long sequence, long now)
    {
        if (sequence > Interlocked.Read(ref _keepaliveSequence) && sequence > Interlocked.Read(ref _answeredSequence))
        {
            Interlocked.Exchange(ref _keepaliveSequence, sequence);
            Interlocked.Exchange(ref _keepaliveHeardAt, now);
        }
    }

    /// <summary>Whether the datagrams carry the heartbeats now: the controller answered a newer one within <see cref="Window"/>.</summary>
    public bool Carry(long now) => Interlocked.Read(ref _answeredAt) is var at and >= 0 && now - at <= _window;

    /// <summary>
    /// Said once each time, when a keepalive comes on the stream (the controller is there) while no answer has come for
    /// two windows (or none ever did, two windows after the first datagram): why, for the log. Null otherwise: a
    /// controller paused for a collection is silent on both, and says nothing of this.
    /// </summary>
    public string? Unheard(long now)
    {
        if (_told || _firstSent < 0 || Carry(now) || now - Math.Max(_firstSent, Interlocked.Read(ref _answeredAt)) <= 2 * _window)
        {
            return null;
        }

        _told = true;
        return now - Interlocked.Read(ref _keepaliveHeardAt) <= 2 * _window
            ? "the controller hears them, but its answers do not come back"
            : "the controller does not hear them";
    }

    /// <summary>Takes no more answers. Call once the session's writer has ended (it sends with <see cref="Send"/>).</summary>
    public void Dispose()
    {
        HeartbeatSockets.Remove(this);
        lock (_checking)
        {
            if (!_ended)
            {
                _ended = true;
                _checking.Dispose();
                _sending.Dispose();
            }
        }
    }
}
