using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Heddle.Contracts.Agents;

namespace Heddle.Agent.Connection;

/// <summary>
/// The process's UDP sockets for heartbeat datagrams, one per address family, shared by every session (and every hollow
/// node of a `heddle hollow` process), and the thread of each that reads the controllers' answers and gives each to the
/// session whose stream id it names, once its MAC is that session's.
/// </summary>
internal static class HeartbeatSockets
{
    /// <summary>About a second of 10,000 hollow nodes' answers.</summary>
    private const int ReceiveBuffer = 8 << 20;

    private static readonly ConcurrentDictionary<ulong, DatagramHeartbeats> Sessions = new();
    private static readonly Lock Opening = new();
    private static Socket? _v4;
    private static Socket? _v6;

    /// <summary>Takes answers for <paramref name="session"/>'s stream; false when another session of the process has that stream id (never, but for a controller's bad luck).</summary>
    public static bool Add(DatagramHeartbeats session) => Sessions.TryAdd(session.Stream, session);

    public static void Remove(DatagramHeartbeats session) => Sessions.TryRemove(new KeyValuePair<ulong, DatagramHeartbeats>(session.Stream, session));

    /// <summary>The socket of <paramref name="family"/>, bound to a port of the system's choosing and read from its first use.</summary>
    public static Socket For(AddressFamily family)
    {
        ref var socket = ref family == AddressFamily.InterNetworkV6 ? ref _v6 : ref _v4;
        if (Volatile.Read(ref socket) is { } open)
        {
            return open;
        }

        lock (Opening)
        {
            if (socket is null)
            {
                var made = new Socket(family, SocketType.Dgram, ProtocolType.Udp);
                HeartbeatDatagram.ReceiveBuffer(made, ReceiveBuffer);
                made.Bind(new IPEndPoint(family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0));
                new Thread(() => Read(made)) { IsBackground = true, Name = "heartbeat answers" }.Start();
                Volatile.Write(ref socket, made);
            }

            return socket;
        }
    }

    private static void Read(Socket socket)
    {
        var buffer = new byte[64]; // larger than an answer: a longer datagram is seen as longer, and dropped
        while (true)
        {
            int received;
            try
            {
                received = socket.Receive(buffer);
            }
            catch (SocketException e) when (e.SocketErrorCode is not (SocketError.Interrupted or SocketError.OperationAborted or SocketError.Shutdown or SocketError.NotSocket))
            {
                continue; // an error queued on the socket (an ICMP answer to a heartbeat): not a reason to stop reading
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            var datagram = buffer.AsSpan(0, received);
            if (HeartbeatDatagram.TryRead(datagram, answer: true, out var stream, out var sequence) && Sessions.TryGetValue(stream, out var session))
            {
                session.Answer(datagram, sequence);
            }
        }
    }
}
