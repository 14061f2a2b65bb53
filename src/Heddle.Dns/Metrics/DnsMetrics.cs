using System.Diagnostics.Metrics;

namespace Heddle.Dns.Metrics;

/// <summary>
/// The DNS server's instruments (meter <c>Heddle.Dns</c>). Everything is observable: the query path only increments
/// its own thread's <see cref="DnsQueryCounters"/>, and the sums are taken when a scrape asks.
/// <list type="bullet">
/// <item><c>heddle_dns_queries_total{transport, type, rcode}</c>: queries answered.</item>
/// <item><c>heddle_dns_queries_dropped_total{transport}</c>: queries that got no answer (unreadable, or not a query).</item>
/// <item><c>heddle_dns_zone_serial</c>: the serial of the zone being served.</item>
/// </list>
/// </summary>
internal sealed class DnsMetrics
{
    public const string MeterName = "Heddle.Dns";

    private readonly IReadOnlyList<DnsQueryCounters> _udp;
    private readonly DnsQueryCounters _tcp;

    public DnsMetrics(IMeterFactory meters, IReadOnlyList<DnsQueryCounters> udp, DnsQueryCounters tcp, Func<long> serial)
    {
        _udp = udp;
        _tcp = tcp;
        var meter = meters.Create(MeterName);
        meter.CreateObservableCounter("heddle.dns.queries", Queries, "{query}", "DNS queries answered, by transport, query type and response code");
        meter.CreateObservableCounter("heddle.dns.queries.dropped", Dropped, "{query}", "DNS queries that got no answer: unreadable, or not a query");
        meter.CreateObservableGauge("heddle.dns.zone.serial", serial, null, "Serial of the zone being served");
    }

    private IEnumerable<Measurement<long>> Queries()
    {
        var measurements = new List<Measurement<long>>();
        for (var type = 0; type < DnsQueryCounters.TypeSlots; type++)
        {
            for (var rcode = 0; rcode < DnsQueryCounters.RcodeSlots; rcode++)
            {
                long udp = 0;
                foreach (var worker in _udp)
                {
                    udp += worker.Read(type, rcode);
                }

                Add(measurements, "udp", type, rcode, udp);
                Add(measurements, "tcp", type, rcode, _tcp.Read(type, rcode));
            }
        }

        return measurements;
    }

    private static void Add(List<Measurement<long>> measurements, string transport, int type, int rcode, long count)
    {
        if (count > 0)
        {
            measurements.Add(new Measurement<long>(count, new KeyValuePair<string, object?>("transport", transport),
                new KeyValuePair<string, object?>("type", DnsQueryCounters.TypeNames[type]), new KeyValuePair<string, object?>("rcode", DnsQueryCounters.RcodeNames[rcode])));
        }
    }

    private IEnumerable<Measurement<long>> Dropped() =>
    [
        new(_udp.Sum(w => w.ReadDropped()), new KeyValuePair<string, object?>("transport", "udp")),
        new(_tcp.ReadDropped(), new KeyValuePair<string, object?>("transport", "tcp")),
    ];
}
