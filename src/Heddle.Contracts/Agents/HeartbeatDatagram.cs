using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Heddle.Contracts.Agents;

/// <summary>
/// A heartbeat sent as a UDP datagram (see agent.proto's HeartbeatDatagramOffer), or the controller's answer to one:
/// "HDH1" (a heartbeat) or "HDA1" (its answer), the stream id, the sequence, and the first 16 bytes of HMAC-SHA256
/// with the stream's key over those 20 bytes (so the one is never taken for the other). Fixed size; nothing in it is
/// parsed before its size and kind are checked, and nothing in it is believed before its MAC is.
/// </summary>
public static class HeartbeatDatagram
{
    /// <summary>The size of every heartbeat datagram.</summary>
    public const int Length = 36;

    /// <summary>The size of a stream's key.</summary>
    public const int KeyLength = 32;

    private const int Signed = 20;
    private const int MacLength = 16;

    private static ReadOnlySpan<byte> Magic(bool answer) => answer ? "HDA1"u8 : "HDH1"u8;

    /// <summary>
    /// Writes the heartbeat of <paramref name="sequence"/> on stream <paramref name="stream"/> (or, with
    /// <paramref name="answer"/>, the controller's answer that it heard it) into <paramref name="into"/> (<see cref="Length"/>
    /// bytes), with the stream's <see cref="Mac"/>.
    /// </summary>
    public static void Write(Span<byte> into, bool answer, ulong stream, long sequence, HeartbeatMac mac)
    {
        if (into.Length < Length)
        {
            throw new ArgumentException($"a heartbeat datagram takes {Length} bytes");
        }

        Magic(answer).CopyTo(into);
        BinaryPrimitives.WriteUInt64BigEndian(into[4..], stream);
        BinaryPrimitives.WriteInt64BigEndian(into[12..], sequence);
        Span<byte> full = stackalloc byte[HMACSHA256.HashSizeInBytes];
        mac.Compute(into[..Signed], full);
        full[..MacLength].CopyTo(into[Signed..]);
    }

    /// <summary>A stream's MAC, made from its key (<see cref="KeyLength"/> bytes), for datagram after datagram.</summary>
    public static HeartbeatMac Mac(ReadOnlySpan<byte> key) =>
        key.Length == KeyLength ? new HeartbeatMac(key) : throw new ArgumentException($"a heartbeat datagram's key is {KeyLength} bytes");

    /// <summary>
    /// The stream a datagram says it is of, and its sequence; false for anything not shaped as a heartbeat (or, with
    /// <paramref name="answer"/>, as an answer to one). Not yet believed: see <see cref="Verify"/>.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> datagram, bool answer, out ulong stream, out long sequence)
    {
        stream = 0;
        sequence = 0;
        if (datagram.Length != Length || !datagram[..4].SequenceEqual(Magic(answer)))
        {
            return false;
        }

        stream = BinaryPrimitives.ReadUInt64BigEndian(datagram[4..]);
        sequence = BinaryPrimitives.ReadInt64BigEndian(datagram[12..]);
        return true;
    }

    /// <summary>
    /// Gives <paramref name="socket"/> a receive buffer of <paramref name="bytes"/>: past the system's limit for ordinary
    /// sockets where the process may (CAP_NET_ADMIN), else as much as that limit (net.core.rmem_max) allows. A datagram
    /// of 36 bytes takes about 1 KB of it in the kernel: the default (about 200 KB) holds a fifth of a second of 10,000
    /// nodes' heartbeats, and a collection's pause would drop some.
    /// </summary>
    public static void ReceiveBuffer(System.Net.Sockets.Socket socket, int bytes)
    {
        const int SolSocket = 1, SoRcvbufForce = 33;
        if (OperatingSystem.IsLinux())
        {
            try
            {
                socket.SetRawSocketOption(SolSocket, SoRcvbufForce, BitConverter.GetBytes(bytes));
                return;
            }
            catch (System.Net.Sockets.SocketException)
            {
                // not privileged: the ordinary option
            }
        }

        socket.ReceiveBufferSize = bytes;
    }

    /// <summary>Whether the datagram's MAC is the one the stream's <see cref="Mac"/> makes (compared in constant time).</summary>
    public static bool Verify(ReadOnlySpan<byte> datagram, HeartbeatMac mac)
    {
        if (datagram.Length != Length)
        {
            return false;
        }

        Span<byte> full = stackalloc byte[HMACSHA256.HashSizeInBytes];
        mac.Compute(datagram[..Signed], full);
        return CryptographicOperations.FixedTimeEquals(full[..MacLength], datagram[Signed..]);
    }
}

/// <summary>
/// A stream's heartbeat MAC: HMAC-SHA256 under the stream's key, made afresh for each datagram by the one-shot API. An
/// <see cref="IncrementalHash"/> kept per stream instead held an OpenSSL context of ~1.4 KB for each node a controller
/// holds (14 MB at 10,000 idle nodes); the one-shot costs ~0.75 µs more per datagram (1.3 against 0.55 µs on the 2-core
/// machine of the benchmarks: at 10,000 nodes, each datagram checked and answered, 0.015 of a core). Stateless between
/// datagrams, so safe for several threads at once; disposed, its key is zeroed.
/// </summary>
public sealed class HeartbeatMac : IDisposable
{
    private readonly byte[] _key;

    internal HeartbeatMac(ReadOnlySpan<byte> key) => _key = key.ToArray();

    internal void Compute(ReadOnlySpan<byte> signed, Span<byte> mac) => HMACSHA256.HashData(_key, signed, mac);

    public void Dispose() => CryptographicOperations.ZeroMemory(_key);
}
