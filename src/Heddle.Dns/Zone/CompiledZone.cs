using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Heddle.Contracts.Api;
using Heddle.Dns.Wire;
using Heddle.Model.Validation;

namespace Heddle.Dns.Zone;

/// <summary>
/// One record set of one name and type, already in wire format: the owner is a pointer to the question (every
/// answer's owner is the name asked), so a response is the records copied after the question, nothing encoded.
/// </summary>
internal sealed class RecordSet(ushort type, byte[][] records, byte[][]? additional = null)
{
    private int _next;

    public ushort Type { get; } = type;

    public byte[][] Records { get; } = records;

    /// <summary>Records for the additional section (the A records of SRV targets).</summary>
    public byte[][]? Additional { get; } = additional;

    /// <summary>Where this answer starts: address sets rotate per answer so clients spread over them.</summary>
    public int NextStart() => Records.Length < 2 || Type is not (DnsType.A or DnsType.AAAA) ? 0 : (int)((uint)Interlocked.Increment(ref _next) % (uint)Records.Length);
}

/// <summary>A name that exists. A name with no record sets is an empty non-terminal: it answers NODATA, not NXDOMAIN.</summary>
internal sealed class NameNode
{
    public List<RecordSet> Sets { get; } = [];

    public RecordSet? Find(ushort type)
    {
        foreach (var set in Sets)
        {
            if (set.Type == type)
            {
                return set;
            }
        }

        return null;
    }
}

/// <summary>
/// A record set compiled for answering: every name of the zone (lower-case, dotted) with its record sets encoded
/// once. Immutable; the server swaps in a new one when the records change.
/// </summary>
internal sealed class CompiledZone
{
    private readonly Dictionary<string, NameNode> _names;
    private readonly Dictionary<string, NameNode>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    private CompiledZone(string zone, Dictionary<string, NameNode> names, byte[] soaAuthority, long serial)
    {
        Zone = zone;
        _names = names;
        _lookup = names.GetAlternateLookup<ReadOnlySpan<char>>();
        SoaAuthority = soaAuthority;
        Serial = serial;
    }

    public string Zone { get; }

    public long Serial { get; }

    /// <summary>The zone's SOA with its full owner name, for the authority section of negative answers (RFC 2308).</summary>
    public byte[] SoaAuthority { get; }

    public int NameCount => _names.Count;

    public bool Contains(ReadOnlySpan<char> name) =>
        name.Equals(Zone, StringComparison.Ordinal) || (name.Length > Zone.Length && name.EndsWith(Zone, StringComparison.Ordinal) && name[^(Zone.Length + 1)] == '.');

    public NameNode? Find(ReadOnlySpan<char> name) => _lookup.TryGetValue(name, out var node) ? node : null;

    /// <summary>Every name the zone answers (lower-case, dotted, without the root's dot).</summary>
    public IEnumerable<string> Names => _names.Keys;

    public static CompiledZone Build(DnsRecordSet records, DnsOptions options, IReadOnlyList<IPAddress> nameServers)
    {
        var zone = options.Zone.TrimEnd('.').ToLowerInvariant();
        var ttl = options.Ttl;
        var builder = new Builder(zone);

        var nsName = $"{ZoneLabels.NameServer}.{zone}";
        var serial = (uint)(records.Serial & 0xFFFFFFFF);
        builder.Add(zone, DnsType.SOA, Soa(zone, nsName, serial, ttl), ttl);
        builder.Add(zone, DnsType.NS, DnsNames.Encode(nsName), ttl);
        builder.Ensure(nsName);
        foreach (var address in nameServers)
        {
            builder.AddAddress(nsName, address, ttl);
        }

        builder.Add($"{ZoneLabels.Version}.{zone}", DnsType.TXT, Txt("heddle-dns 1"), ttl);
        foreach (var service in records.Services)
        {
            if (ZoneLabels.IsReserved(service.Name.Split('.')[0]))
            {
                // Refused at validation (HD1019); a service stored before its name was reserved must not add records to the zone's own names either.
                continue;
            }

            var serviceName = $"{service.Name}.{zone}";
            builder.Ensure(serviceName);
            var serviceAddresses = service.Vips.Count > 0 ? service.Vips : service.Roles.SelectMany(r => r.Instances).Select(i => i.Address);
            foreach (var address in serviceAddresses.Distinct())
            {
                builder.AddAddress(serviceName, IPAddress.Parse(address), ttl);
            }

            foreach (var role in service.Roles)
            {
                var roleName = $"{role.Name}.{serviceName}";
                builder.Ensure(roleName);
                foreach (var address in role.Instances.Select(i => i.Address).Distinct())
                {
                    builder.AddAddress(roleName, IPAddress.Parse(address), ttl);
                }

                foreach (var instance in role.Instances.OrderBy(i => i.Index))
                {
                    var instanceName = $"{instance.Index}.{roleName}";
                    var address = IPAddress.Parse(instance.Address);
                    builder.AddAddress(instanceName, address, ttl);
                    foreach (var endpoint in instance.Endpoints)
                    {
                        var srvName = $"_{endpoint.Name}._{endpoint.Transport}.{roleName}";
                        builder.Add(srvName, DnsType.SRV, Srv(endpoint.Port, instanceName), ttl);
                        builder.AddGlue(srvName, instanceName, address, ttl);
                    }
                }
            }
        }

        var soaOwner = DnsNames.Encode(zone);
        return new CompiledZone(zone, builder.Compile(), DnsNames.Record(soaOwner, DnsType.SOA, ttl, Soa(zone, nsName, serial, ttl)), records.Serial);
    }

    private static byte[] Soa(string zone, string ns, uint serial, int ttl)
    {
        var mname = DnsNames.Encode(ns);
        var rname = DnsNames.Encode($"{ZoneLabels.Hostmaster}.{zone}");
        var rdata = new byte[mname.Length + rname.Length + 20];
        mname.CopyTo(rdata, 0);
        rname.CopyTo(rdata, mname.Length);
        var at = mname.Length + rname.Length;
        BinaryPrimitives.WriteUInt32BigEndian(rdata.AsSpan(at), serial);
        BinaryPrimitives.WriteInt32BigEndian(rdata.AsSpan(at + 4), 3600);   // refresh
        BinaryPrimitives.WriteInt32BigEndian(rdata.AsSpan(at + 8), 600);    // retry
        BinaryPrimitives.WriteInt32BigEndian(rdata.AsSpan(at + 12), 86400); // expire
        BinaryPrimitives.WriteInt32BigEndian(rdata.AsSpan(at + 16), ttl);   // minimum: the negative-caching TTL
        return rdata;
    }

    private static byte[] Srv(int port, string target)
    {
        var name = DnsNames.Encode(target);
        var rdata = new byte[6 + name.Length];
        BinaryPrimitives.WriteUInt16BigEndian(rdata, 0);            // priority
        BinaryPrimitives.WriteUInt16BigEndian(rdata.AsSpan(2), 1);  // weight
        BinaryPrimitives.WriteUInt16BigEndian(rdata.AsSpan(4), (ushort)port);
        name.CopyTo(rdata, 6);
        return rdata;
    }

    private static byte[] Txt(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        return [(byte)bytes.Length, .. bytes];
    }

    /// <summary>Collects records per name and type, then encodes them.</summary>
    private sealed class Builder(string zone)
    {
        private readonly Dictionary<string, Dictionary<ushort, List<byte[]>>> _records = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<byte[]>> _glue = new(StringComparer.Ordinal);

        /// <summary>Makes a name and every ancestor up to the zone exist (ancestors without records are empty non-terminals).</summary>
        public Dictionary<ushort, List<byte[]>> Ensure(string name)
        {
            if (!_records.TryGetValue(name, out var types))
            {
                types = [];
                _records[name] = types;
                var dot = name.IndexOf('.');
                if (name != zone && dot > 0)
                {
                    Ensure(name[(dot + 1)..]);
                }
            }

            return types;
        }

        public void Add(string name, ushort type, byte[] rdata, int ttl)
        {
            var types = Ensure(name);
            if (!types.TryGetValue(type, out var list))
            {
                types[type] = list = [];
            }

            var record = DnsNames.Record(DnsNames.QuestionPointer, type, ttl, rdata);
            if (!list.Any(r => r.AsSpan().SequenceEqual(record)))
            {
                list.Add(record);
            }
        }

        public void AddAddress(string name, IPAddress address, int ttl) =>
            Add(name, address.AddressFamily == AddressFamily.InterNetworkV6 ? DnsType.AAAA : DnsType.A, address.GetAddressBytes(), ttl);

        public void AddGlue(string srvName, string target, IPAddress address, int ttl)
        {
            if (!_glue.TryGetValue(srvName, out var list))
            {
                _glue[srvName] = list = [];
            }

            var type = address.AddressFamily == AddressFamily.InterNetworkV6 ? DnsType.AAAA : DnsType.A;
            list.Add(DnsNames.Record(DnsNames.Encode(target), type, ttl, address.GetAddressBytes()));
        }

        public Dictionary<string, NameNode> Compile()
        {
            var names = new Dictionary<string, NameNode>(StringComparer.Ordinal);
            foreach (var (name, types) in _records)
            {
                var node = new NameNode();
                foreach (var (type, list) in types)
                {
                    node.Sets.Add(new RecordSet(type, [.. list], type == DnsType.SRV ? _glue.GetValueOrDefault(name)?.ToArray() : null));
                }

                names[name] = node;
            }

            return names;
        }
    }
}
