using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Heddle.Contracts.Agents;
using Heddle.Controller.Reconciliation;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Agents;

/// <summary>
/// Agents' heartbeats as UDP datagrams, on the agents' port number. A heartbeat on the stream cost the controller a TLS
/// record, an HTTP/2 frame, a gRPC message and a wake of the thread pool: at 2,500 idle nodes that was most of what an
/// idle controller did (about 90 µs per node per second). A datagram costs a receive and a MAC on one thread of its own.
/// Each agent stream that asks is given a random id and key (<see cref="Register"/>, sent on the stream, so only its
/// mutually authenticated peer has them); a datagram counts as the node heard only with that stream's MAC and a
/// sequence above the last heard. Each one heard is answered with a datagram of the same key to where it came from, and
/// that answer is the agent's keepalive: a stream whose datagrams are heard gets no keepalive messages. An agent whose
/// answers stop coming (a firewall that drops UDP, either way) heart-beats on its stream again, and a stream that
/// heart-beats, or whose datagrams are not heard, gets its keepalives on the stream (<see cref="Registration.NeedsKeepalive"/>).
/// </summary>
public sealed partial class HeartbeatDatagrams(NodeHealthMonitor health, Metrics.ControllerMetrics metrics, TimeProvider time, ILogger<HeartbeatDatagrams>? logger = null) : IDisposable
{
    /// <summary>The socket's receive buffer asked for: about 1.5 s of 10,000 nodes' heartbeats (<see cref="HeartbeatDatagram.ReceiveBuffer"/>).</summary>
    private const int ReceiveBuffer = 16 << 20;

    private readonly ConcurrentDictionary<ulong, Registration> _streams = new();
    private Socket? _socket;

    /// <summary>Where datagrams are received; null before <see cref="Start"/>, or when no UDP port could be had (agents then heart-beat on their streams).</summary>
    public IPEndPoint? EndPoint { get; private set; }

    /// <summary>Datagrams dropped: not shaped as a heartbeat, of no stream open here, with a wrong MAC, or an old sequence.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    private long _dropped;

    /// <summary>
    /// Binds UDP on <paramref name="address"/> at <paramref name="port"/> (the agents' TCP port, so one number is opened
    /// in a firewall), or at a port the system chooses when that one is taken for UDP, and starts reading.
    /// </summary>
    public void Start(IPAddress address, int port)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            HeartbeatDatagram.ReceiveBuffer(socket, ReceiveBuffer);
            try
            {
                socket.Bind(new IPEndPoint(address, port));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                socket.Bind(new IPEndPoint(address, 0));
                if (logger is not null)
                {
                    LogOtherPort(logger, port, ((IPEndPoint)socket.LocalEndPoint!).Port);
                }
            }
        }
        catch (SocketException e)
        {
            socket.Dispose();
            if (logger is not null)
            {
                LogNoDatagrams(logger, e.Message);
            }

            return;
        }

        _socket = socket;
        EndPoint = (IPEndPoint)socket.LocalEndPoint!;
        new Thread(Read) { IsBackground = true, Name = "heartbeat datagrams" }.Start();
    }

    /// <summary>A stream's datagram id and key, for as long as the stream is open (dispose it when the stream ends).</summary>
    public Registration Register(string node)
    {
        while (true)
        {
            var registration = new Registration(this, BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)), RandomNumberGenerator.GetBytes(HeartbeatDatagram.KeyLength), node, time);
            if (_streams.TryAdd(registration.Id, registration))
            {
                return registration;
            }
        }
    }

    private void Read()
    {
        var buffer = new byte[64]; // larger than a heartbeat: a longer datagram is seen as longer, and dropped
        var answer = new byte[HeartbeatDatagram.Length];
        var from = new SocketAddress(_socket!.AddressFamily);
        while (_socket is { } socket)
        {
            int received;
            try
            {
                received = socket.ReceiveFrom(buffer, SocketFlags.None, from);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.Interrupted or SocketError.OperationAborted or SocketError.Shutdown or SocketError.NotSocket)
            {
                return;
            }
            catch (SocketException)
            {
                continue; // an error queued on the socket (an ICMP answer): not a reason to stop reading
            }

            if (Take(buffer.AsSpan(0, received), answer))
            {
                try
                {
                    socket.SendTo(answer, SocketFlags.None, from);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // not answered: the agent's stream gets keepalives again once it heart-beats there
                }
            }
        }
    }

    /// <summary>
    /// One datagram received: the node it proves is heard, and <paramref name="answer"/> is made, or it is dropped.
    /// True when it was taken.
    /// </summary>
    internal bool Take(ReadOnlySpan<byte> datagram, Span<byte> answer)
    {
        if (!HeartbeatDatagram.TryRead(datagram, answer: false, out var id, out var sequence) || !_streams.TryGetValue(id, out var stream)
            || !stream.Take(datagram, sequence, time.GetTimestamp(), answer))
        {
            Interlocked.Increment(ref _dropped);
            return false;
        }

        health.Seen(stream.Node);
        metrics.Heartbeat(datagram: true);
        return true;
    }

    public void Dispose()
    {
        EndPoint = null; // streams opened from now on heart-beat on the stream
        var socket = Interlocked.Exchange(ref _socket, null);
        socket?.Dispose(); // ends the reader's receive
    }

    /// <summary>One stream's id and key, the highest sequence heard on it, and whether it needs its keepalives on the stream.</summary>
    public sealed class Registration : IDisposable
    {
        /// <summary>A stream whose datagrams have not been heard for this long gets keepalives on the stream (they come every second).</summary>
        public static readonly TimeSpan Unheard = TimeSpan.FromSeconds(2);

        /// <summary>
        /// A stream that heart-beat on the stream within this long gets keepalives on the stream: its agent does not hear the
        /// answers (UDP dropped on the way back), and falls back to the stream until it does.
        /// </summary>
        public static readonly TimeSpan FallenBack = TimeSpan.FromSeconds(3);

        private readonly HeartbeatDatagrams _owner;
        private readonly TimeProvider _time;
        private readonly HeartbeatMac _mac; // the reader's alone, but for its disposal: under a lock of its own
        private bool _ended;
        private long _heard;
        private long _heardAt;
        private long _streamBeatAt;

        internal Registration(HeartbeatDatagrams owner, ulong id, byte[] key, string node, TimeProvider time)
        {
            _owner = owner;
            _time = time;
            Id = id;
            Key = key;
            Node = node;
            _mac = HeartbeatDatagram.Mac(key);
            _heardAt = _streamBeatAt = time.GetTimestamp() - 2 * (long)(FallenBack.TotalSeconds * time.TimestampFrequency); // neither yet
        }

        public ulong Id { get; }

        public byte[] Key { get; }

        public string Node { get; }

        /// <summary>The highest sequence heard (0 before any), said in each keepalive.</summary>
        public long Heard => Interlocked.Read(ref _heard);

        /// <summary>A heartbeat came on the stream: its agent does not hear the datagrams' answers, or sent no datagram.</summary>
        public void StreamHeartbeat() => Volatile.Write(ref _streamBeatAt, _time.GetTimestamp());

        /// <summary>Whether a keepalive goes on the stream now: datagrams unheard for <see cref="Unheard"/>, or a heartbeat on the stream within <see cref="FallenBack"/>.</summary>
        public bool NeedsKeepalive() =>
            _time.GetElapsedTime(Interlocked.Read(ref _heardAt)) > Unheard || _time.GetElapsedTime(Volatile.Read(ref _streamBeatAt)) < FallenBack;

        /// <summary>Takes a datagram of this stream whose MAC is right and whose sequence is new, and makes its answer.</summary>
        internal bool Take(ReadOnlySpan<byte> datagram, long sequence, long now, Span<byte> answer)
        {
            lock (_mac)
            {
                if (_ended || !HeartbeatDatagram.Verify(datagram, _mac) || !Advance(sequence, now))
                {
                    return false;
                }

                HeartbeatDatagram.Write(answer, answer: true, Id, sequence, _mac);
                return true;
            }
        }

        /// <summary>Takes <paramref name="sequence"/> when it is above every one heard before: a datagram said again (replayed) is not.</summary>
        private bool Advance(long sequence, long now)
        {
            var heard = Interlocked.Read(ref _heard);
            while (sequence > heard)
            {
                var was = Interlocked.CompareExchange(ref _heard, sequence, heard);
                if (was == heard)
                {
                    Interlocked.Exchange(ref _heardAt, now);
                    return true;
                }

                heard = was;
            }

            return false;
        }

        public void Dispose()
        {
            _owner._streams.TryRemove(new KeyValuePair<ulong, Registration>(Id, this));
            lock (_mac)
            {
                if (!_ended)
                {
                    _ended = true;
                    _mac.Dispose();
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "UDP port {Port} is taken: agents' heartbeat datagrams are received at port {Other} instead (each agent is told)")]
    private static partial void LogOtherPort(ILogger logger, int port, int other);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No UDP port for agents' heartbeat datagrams ({Reason}): agents heart-beat on their streams, which costs this controller more per node")]
    private static partial void LogNoDatagrams(ILogger logger, string reason);
}
