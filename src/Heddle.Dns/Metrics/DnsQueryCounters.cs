using System.Buffers.Binary;
using Heddle.Dns.Wire;

namespace Heddle.Dns.Metrics;

/// <summary>
/// Queries answered, by query type and response code, counted by one thread: a UDP worker owns one and increments
/// plain longs (no lock, no interlocked instruction, no allocation per query); a scrape reads them from another
/// thread (a 64-bit read is never torn; a count a few queries old is fine). TCP connections share one, through
/// <see cref="CountShared"/>. Type and code are read back from the response: its header holds the code and its
/// question the type, so the responder needs no change.
/// </summary>
internal sealed class DnsQueryCounters
{
    public static readonly string[] TypeNames = ["A", "NS", "SOA", "TXT", "AAAA", "SRV", "ANY", "other"];
    public static readonly string[] RcodeNames = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other"];
    public const int TypeSlots = 8;
    public const int RcodeSlots = 7;

    // Padded at both ends so two threads' counters never share a cache line.
    private const int Pad = 8;
    private readonly long[] _counts = new long[Pad + (TypeSlots * RcodeSlots) + 1 + Pad];
    private const int DroppedSlot = Pad + (TypeSlots * RcodeSlots);

    /// <summary>Counts one answered query from its response (owner thread only).</summary>
    public void Count(ReadOnlySpan<byte> response) => _counts[Slot(response)]++;

    /// <summary>Counts a query that got no response (unreadable, or a response sent to us) (owner thread only).</summary>
    public void Dropped() => _counts[DroppedSlot]++;

    /// <summary>As <see cref="Count"/>, from any thread.</summary>
    public void CountShared(ReadOnlySpan<byte> response) => Interlocked.Increment(ref _counts[Slot(response)]);

    public void DroppedShared() => Interlocked.Increment(ref _counts[DroppedSlot]);

    public long Read(int type, int rcode) => Volatile.Read(ref _counts[Pad + (type * RcodeSlots) + rcode]);

    public long ReadDropped() => Volatile.Read(ref _counts[DroppedSlot]);

    private static int Slot(ReadOnlySpan<byte> response)
    {
        if (response.Length < 12)
        {
            return Pad + ((TypeSlots - 1) * RcodeSlots) + (RcodeSlots - 1);
        }

        var rcode = Math.Min(response[3] & 0x0F, RcodeSlots - 1);
        return Pad + (TypeOf(response) * RcodeSlots) + rcode;
    }

    /// <summary>The type slot of the response's question: its name is the query's, copied, so it is walked label by label.</summary>
    private static int TypeOf(ReadOnlySpan<byte> response)
    {
        if (BinaryPrimitives.ReadUInt16BigEndian(response[4..]) == 0)
        {
            return TypeSlots - 1; // a header alone (FORMERR, NOTIMP): no question to read
        }

        var at = 12;
        while (at < response.Length && response[at] != 0)
        {
            at += (response[at] & 0xC0) != 0 ? response.Length : response[at] + 1; // no pointers in a question we answered
        }

        if (at + 3 > response.Length)
        {
            return TypeSlots - 1;
        }

        return BinaryPrimitives.ReadUInt16BigEndian(response[(at + 1)..]) switch
        {
            DnsType.A => 0,
            DnsType.NS => 1,
            DnsType.SOA => 2,
            DnsType.TXT => 3,
            DnsType.AAAA => 4,
            DnsType.SRV => 5,
            DnsType.ANY => 6,
            _ => TypeSlots - 1,
        };
    }
}
