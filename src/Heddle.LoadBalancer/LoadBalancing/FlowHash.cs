using System.Net;

namespace Heddle.LoadBalancer.LoadBalancing;

/// <summary>The hash of a TCP flow's 5-tuple (protocol, source and destination address and port).</summary>
internal static class FlowHash
{
    public static ulong Of(IPEndPoint source, IPEndPoint destination)
    {
        Span<byte> buffer = stackalloc byte[16 + 16 + 4 + 1];
        var length = 0;
        source.Address.TryWriteBytes(buffer, out var written);
        length += written;
        destination.Address.TryWriteBytes(buffer[length..], out written);
        length += written;
        buffer[length++] = (byte)(source.Port >> 8);
        buffer[length++] = (byte)source.Port;
        buffer[length++] = (byte)(destination.Port >> 8);
        buffer[length++] = (byte)destination.Port;
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
