using System.Net;

namespace Heddle.LoadBalancer.LoadBalancing;

/// <summary>The hash of a TCP flow's 5-tuple (protocol, source and destination address and port).</summary>
internal static class FlowHash
{
    public static ulong Of(IPEndPoint source, IPEndPoint destination)
    {
        Span<byte> addresses = stackalloc byte[32];
        source.Address.TryWriteBytes(addresses, out var sourceLength);
        destination.Address.TryWriteBytes(addresses[sourceLength..], out var destinationLength);
        return Of(addresses[..sourceLength], source.Port, addresses.Slice(sourceLength, destinationLength), destination.Port);
    }

    /// <summary>The same hash from raw address bytes (4 for IPv4, 16 for IPv6) and ports, as accept gives them.</summary>
    public static ulong Of(ReadOnlySpan<byte> sourceAddress, int sourcePort, ReadOnlySpan<byte> destinationAddress, int destinationPort)
    {
        Span<byte> buffer = stackalloc byte[16 + 16 + 4 + 1];
        sourceAddress.CopyTo(buffer);
        var length = sourceAddress.Length;
        destinationAddress.CopyTo(buffer[length..]);
        length += destinationAddress.Length;
        buffer[length++] = (byte)(sourcePort >> 8);
        buffer[length++] = (byte)sourcePort;
        buffer[length++] = (byte)(destinationPort >> 8);
        buffer[length++] = (byte)destinationPort;
        buffer[length++] = 6; // TCP
        var hash = 14695981039346656037UL;
        foreach (var b in buffer[..length])
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        // FNV's low bits mix poorly for inputs that differ only in their last bytes (source ports): finish with a mixer.
        hash ^= hash >> 33;
        hash *= 0xff51afd7ed558ccdUL;
        hash ^= hash >> 33;
        hash *= 0xc4ceb9fe1a85ec53UL;
        return hash ^ (hash >> 33);
    }
}
