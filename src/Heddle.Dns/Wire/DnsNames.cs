using System.Buffers.Binary;
using System.Text;

namespace Heddle.Dns.Wire;

/// <summary>Domain names in wire format (RFC 1035 §3.1): length-prefixed labels ending with a zero byte.</summary>
internal static class DnsNames
{
    public const int MaxNameLength = 255;

    /// <summary>Encodes a dotted name ("web.hello.heddle.internal") in wire format, lower-cased.</summary>
    public static byte[] Encode(string dotted)
    {
        var name = dotted.TrimEnd('.').ToLowerInvariant();
        var output = new List<byte>(name.Length + 2);
        if (name.Length > 0)
        {
            foreach (var label in name.Split('.'))
            {
                var bytes = Encoding.ASCII.GetBytes(label);
                if (bytes.Length is 0 or > 63)
                {
                    throw new ArgumentException($"'{dotted}' has an empty label or one longer than 63 bytes");
                }

                output.Add((byte)bytes.Length);
                output.AddRange(bytes);
            }
        }

        output.Add(0);
        if (output.Count > MaxNameLength)
        {
            throw new ArgumentException($"'{dotted}' is longer than 255 bytes in wire format");
        }

        return [.. output];
    }

    /// <summary>
    /// Reads an uncompressed name (a question's) at <paramref name="offset"/>, writing it lower-cased and dotted into
    /// <paramref name="dotted"/>. Returns the offset after the name, or -1 when it is malformed (a pointer, a label
    /// over 63, past the end, over 255 bytes, or a character no host name has).
    /// </summary>
    public static int ReadQuestionName(ReadOnlySpan<byte> message, int offset, Span<char> dotted, out int length)
    {
        length = 0;
        var wire = 0;
        while (true)
        {
            if (offset >= message.Length)
            {
                return -1;
            }

            int label = message[offset++];
            wire++;
            if (label == 0)
            {
                return wire <= MaxNameLength ? offset : -1;
            }

            if (label > 63 || offset + label > message.Length)
            {
                return -1; // pointers (0xC0) and the reserved 0x40/0x80 forms are not allowed in a question here
            }

            if (length > 0)
            {
                dotted[length++] = '.';
            }

            for (var i = 0; i < label; i++)
            {
                var c = message[offset + i];
                if (c == (byte)'.' || c > 0x7E || c < 0x21)
                {
                    return -1;
                }

                dotted[length++] = (char)(c is >= (byte)'A' and <= (byte)'Z' ? c + 32 : c);
            }

            offset += label;
            wire += label;
            if (wire > MaxNameLength)
            {
                return -1;
            }
        }
    }

    /// <summary>Writes a resource record: owner, type, class IN, TTL, RDATA. Returns the bytes.</summary>
    public static byte[] Record(ReadOnlySpan<byte> owner, ushort type, int ttl, ReadOnlySpan<byte> rdata)
    {
        var record = new byte[owner.Length + 10 + rdata.Length];
        owner.CopyTo(record);
        var at = owner.Length;
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(at), type);
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(at + 2), DnsClass.IN);
        BinaryPrimitives.WriteInt32BigEndian(record.AsSpan(at + 4), ttl);
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(at + 8), (ushort)rdata.Length);
        rdata.CopyTo(record.AsSpan(at + 10));
        return record;
    }

    /// <summary>The owner of answer records: a compression pointer to the question's name at offset 12.</summary>
    public static ReadOnlySpan<byte> QuestionPointer => [0xC0, 0x0C];
}
