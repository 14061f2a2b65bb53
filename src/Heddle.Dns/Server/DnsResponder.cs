using System.Buffers.Binary;
using Heddle.Dns.Wire;
using Heddle.Dns.Zone;

namespace Heddle.Dns.Server;

/// <summary>
/// Answers one query from a compiled zone: a pure function from query bytes to response bytes, with no allocation.
/// Authoritative only: names outside the zone are REFUSED (no recursion). A name that does not exist is NXDOMAIN,
/// a name without the asked type is NODATA, both with the zone's SOA in the authority section (RFC 2308). An
/// answer that does not fit the UDP limit (512, or the EDNS0 size up to 4096) comes back truncated (TC) so the
/// client asks again over TCP. A malformed query gets FORMERR when its header can be read, and nothing otherwise.
/// </summary>
internal static class DnsResponder
{
    public const int MaxUdpPayload = 4096;
    public const int ResponseBufferSize = 65535;

    /// <summary>The UDP size this server announces in its own OPT record.</summary>
    public const ushort AdvertisedUdpPayload = 1232;

    private const int HeaderSize = 12;
    private const int OptSize = 11;

    /// <returns>The response length; 0 means send nothing.</returns>
    public static int Respond(ReadOnlySpan<byte> query, Span<byte> response, CompiledZone zone, bool overTcp)
    {
        if (query.Length < HeaderSize || response.Length < 512)
        {
            return 0;
        }

        var flags = BinaryPrimitives.ReadUInt16BigEndian(query[2..]);
        if ((flags & 0x8000) != 0)
        {
            return 0; // a response, not a query: answering it could loop
        }

        var recursionDesired = (flags & 0x0100) != 0;
        var opcode = (flags >> 11) & 0xF;
        var questions = BinaryPrimitives.ReadUInt16BigEndian(query[4..]);
        var answersIn = BinaryPrimitives.ReadUInt16BigEndian(query[6..]);
        var authorityIn = BinaryPrimitives.ReadUInt16BigEndian(query[8..]);
        var additionalIn = BinaryPrimitives.ReadUInt16BigEndian(query[10..]);
        if (opcode != 0)
        {
            return HeaderOnly(query, response, DnsRcode.NotImp, recursionDesired);
        }

        if (questions != 1 || answersIn != 0 || authorityIn != 0)
        {
            return HeaderOnly(query, response, DnsRcode.FormErr, recursionDesired);
        }

        Span<char> name = stackalloc char[DnsNames.MaxNameLength];
        var nameEnd = DnsNames.ReadQuestionName(query, HeaderSize, name, out var nameLength);
        if (nameEnd < 0 || nameEnd + 4 > query.Length)
        {
            return HeaderOnly(query, response, DnsRcode.FormErr, recursionDesired);
        }

        var qtype = BinaryPrimitives.ReadUInt16BigEndian(query[nameEnd..]);
        var qclass = BinaryPrimitives.ReadUInt16BigEndian(query[(nameEnd + 2)..]);
        var questionEnd = nameEnd + 4;

        var edns = false;
        var udpLimit = 512;
        if (additionalIn > 0)
        {
            if (!TryReadOpt(query, questionEnd, out edns, out var size))
            {
                return HeaderOnly(query, response, DnsRcode.FormErr, recursionDesired);
            }

            if (edns)
            {
                udpLimit = Math.Clamp((int)size, 512, MaxUdpPayload);
            }
        }

        var limit = overTcp ? response.Length : udpLimit;
        var question = query[HeaderSize..questionEnd];
        question.CopyTo(response[HeaderSize..]);
        var writer = new Writer(response, HeaderSize + question.Length, edns ? OptSize : 0);
        var lookupName = name[..nameLength];
        int rcode;
        var authoritative = true;
        if (qclass != DnsClass.IN && qclass != DnsClass.ANY || !zone.Contains(lookupName))
        {
            rcode = DnsRcode.Refused;
            authoritative = false;
        }
        else if (zone.Find(lookupName) is not { } node)
        {
            rcode = DnsRcode.NxDomain;
            writer.Authority(zone.SoaAuthority);
        }
        else
        {
            rcode = DnsRcode.NoError;
            var answered = false;
            foreach (var set in node.Sets)
            {
                if (set.Type == qtype || qtype == DnsType.ANY)
                {
                    answered = true;
                    writer.Answers(set);
                }
            }

            if (!answered)
            {
                writer.Authority(zone.SoaAuthority);
            }
        }

        var length = writer.Length;
        if (!overTcp && (writer.Overflowed || length + (edns ? OptSize : 0) > limit))
        {
            // Truncated: the question alone, with TC set, so the client retries over TCP.
            WriteHeader(query, response, rcode, recursionDesired, authoritative, truncated: true, 1, 0, 0, edns ? 1 : 0);
            var end = HeaderSize + question.Length;
            return edns ? WriteOpt(response, end) : end;
        }

        WriteHeader(query, response, rcode, recursionDesired, authoritative, truncated: false, 1, writer.AnswerCount, writer.AuthorityCount, writer.AdditionalCount + (edns ? 1 : 0));
        return edns ? WriteOpt(response, length) : length;
    }

    /// <summary>Finds an OPT record (EDNS0) right after the question; false when the additional section is malformed.</summary>
    private static bool TryReadOpt(ReadOnlySpan<byte> query, int at, out bool found, out ushort udpSize)
    {
        found = false;
        udpSize = 512;
        if (at + OptSize > query.Length)
        {
            return false;
        }

        if (query[at] != 0 || BinaryPrimitives.ReadUInt16BigEndian(query[(at + 1)..]) != DnsType.OPT)
        {
            return true; // another kind of additional record (TSIG, a cookie carrier): not used here
        }

        var rdLength = BinaryPrimitives.ReadUInt16BigEndian(query[(at + 9)..]);
        if (at + OptSize + rdLength > query.Length)
        {
            return false;
        }

        found = true;
        udpSize = BinaryPrimitives.ReadUInt16BigEndian(query[(at + 3)..]);
        return true;
    }

    private static int HeaderOnly(ReadOnlySpan<byte> query, Span<byte> response, int rcode, bool recursionDesired)
    {
        WriteHeader(query, response, rcode, recursionDesired, authoritative: false, truncated: false, 0, 0, 0, 0);
        return HeaderSize;
    }

    private static void WriteHeader(ReadOnlySpan<byte> query, Span<byte> response, int rcode, bool recursionDesired, bool authoritative, bool truncated,
        int questions, int answers, int authority, int additional)
    {
        query[..2].CopyTo(response); // the query's ID
        var flags = 0x8000 | (authoritative ? 0x0400 : 0) | (truncated ? 0x0200 : 0) | (recursionDesired ? 0x0100 : 0) | rcode;
        BinaryPrimitives.WriteUInt16BigEndian(response[2..], (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(response[4..], (ushort)questions);
        BinaryPrimitives.WriteUInt16BigEndian(response[6..], (ushort)answers);
        BinaryPrimitives.WriteUInt16BigEndian(response[8..], (ushort)authority);
        BinaryPrimitives.WriteUInt16BigEndian(response[10..], (ushort)additional);
    }

    private static int WriteOpt(Span<byte> response, int at)
    {
        response[at] = 0; // root owner
        BinaryPrimitives.WriteUInt16BigEndian(response[(at + 1)..], DnsType.OPT);
        BinaryPrimitives.WriteUInt16BigEndian(response[(at + 3)..], AdvertisedUdpPayload);
        BinaryPrimitives.WriteUInt32BigEndian(response[(at + 5)..], 0); // extended rcode 0, version 0, no flags
        BinaryPrimitives.WriteUInt16BigEndian(response[(at + 9)..], 0);
        return at + OptSize;
    }

    /// <summary>Appends pre-encoded records, section by section, never past the buffer.</summary>
    private ref struct Writer(Span<byte> buffer, int start, int reserve)
    {
        private readonly Span<byte> _buffer = buffer;
        private readonly int _capacity = buffer.Length - reserve;

        public int Length { get; private set; } = start;

        public int AnswerCount { get; private set; }

        public int AuthorityCount { get; private set; }

        public int AdditionalCount { get; private set; }

        public bool Overflowed { get; private set; }

        public void Answers(RecordSet set)
        {
            var records = set.Records;
            var first = set.NextStart();
            for (var i = 0; i < records.Length; i++)
            {
                if (!TryAppend(records[(first + i) % records.Length]))
                {
                    return;
                }

                AnswerCount++;
            }

            foreach (var glue in set.Additional ?? [])
            {
                if (!TryAppend(glue))
                {
                    return;
                }

                AdditionalCount++;
            }
        }

        public void Authority(byte[] record)
        {
            if (TryAppend(record))
            {
                AuthorityCount++;
            }
        }

        private bool TryAppend(byte[] record)
        {
            if (Overflowed || Length + record.Length > _capacity)
            {
                Overflowed = true;
                return false;
            }

            record.CopyTo(_buffer[Length..]);
            Length += record.Length;
            return true;
        }
    }
}
