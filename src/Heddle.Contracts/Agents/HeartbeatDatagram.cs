using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Heddle.Contracts.Agents;

/// <summary>
/// A heartbeat sent as a UDP datagram (see agent.proto's HeartbeatDatagrams): "HDH1", the stream id, the sequence, and
/// the first 16 bytes of HMAC-SHA256 with the stream's key over those 20 bytes. Fixed size; nothing in it is parsed
/// before its size is checked, and nothing in it is believed before its MAC is.
/// </summary>
public static class HeartbeatDatagram
{
    /// <summary>The size of every heartbeat datagram.</summary>
    public const int Length = 36;

    /// <summary>The size of a stream's key.</summary>
    public const int KeyLength = 32;

    private const int Signed = 20;
    private const int MacLength = 16;

    private static ReadOnlySpan<byte> Magic => "HDH1"u8;

    /// <summary>Writes the heartbeat of <paramref name="sequence"/> on stream <paramref name="stream"/> into <paramref name="into"/> (<see cref="Length"/> bytes).</summary>
    public static void Write(Span<byte> into, ulong stream, long sequence, ReadOnlySpan<byte> key)
    {
        if (into.Length < Length || key.Length != KeyLength)
        {
            throw new ArgumentException($"a heartbeat datagram takes {Length} bytes and a key of {KeyLength}");
        }

        Magic.CopyTo(into);
        BinaryPrimitives.WriteUInt64BigEndian(into[4..], stream);
        BinaryPrimitives.WriteInt64BigEndian(into[12..], sequence);
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key, into[..Signed], mac);
        mac[..MacLength].CopyTo(into[Signed..]);
    }

    /// <summary>The stream a datagram says it is of, and its sequence; false for anything not shaped as a heartbeat. Not yet believed: see <see cref="Verify"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> datagram, out ulong stream, out long sequence)
    {
        stream = 0;
        sequence = 0;
        if (datagram.Length != Length || !datagram[..4].SequenceEqual(Magic))
        {
            return false;
        }

        stream = BinaryPrimitives.ReadUInt64BigEndian(datagram[4..]);
        sequence = BinaryPrimitives.ReadInt64BigEndian(datagram[12..]);
        return true;
    }

    /// <summary>Whether the datagram's MAC is the one <paramref name="key"/> makes (compared in constant time).</summary>
    public static bool Verify(ReadOnlySpan<byte> datagram, ReadOnlySpan<byte> key)
    {
        if (datagram.Length != Length || key.Length != KeyLength)
        {
            return false;
        }

        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key, datagram[..Signed], mac);
        return CryptographicOperations.FixedTimeEquals(mac[..MacLength], datagram[Signed..]);
    }
}
