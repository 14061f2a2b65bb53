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

    // The names each service added (its own and the ancestors it made exist), to be taken as they are by the next
    // build when the service says the same; empty when the zone was built whole.
    private readonly Dictionary<string, (DnsService Service, Dictionary<string, NameNode> Names)> _fragments;
    private readonly int _ttl;

    private CompiledZone(string zone, Dictionary<string, NameNode> names, byte[] soaAuthority, long serial, int ttl,
        Dictionary<string, (DnsService Service, Dictionary<string, NameNode> Names)> fragments)
    {
        Zone = zone;
        _ttl = ttl;
        _fragments = fragments;
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

    /// <summary>
    /// Compiles the zone. With <paramref name="previous"/>, a service that says exactly what it said there keeps the names
    /// compiled for it then, and only the services that changed are encoded: an instance becoming Ready costs its
    /// service, not the zone (issue 27). Two services claiming one name with records (a role named like another
    /// service's slot) are compiled together, whole, as before.
    /// </summary>
    public static CompiledZone Build(DnsRecordSet records, DnsOptions options, IReadOnlyList<IPAddress> nameServers, CompiledZone? previous = null)
    {
        var zone = options.Zone.TrimEnd('.').ToLowerInvariant();
        var ttl = options.Ttl;
        var serial = (uint)(records.Serial & 0xFFFFFFFF);
        var nsName = $"{ZoneLabels.NameServer}.{zone}";
        var apex = new Builder(zone);
        AddApex(apex, zone, nsName, serial, ttl, nameServers);
        var names = apex.Compile();
        var fragments = new Dictionary<string, (DnsService, Dictionary<string, NameNode>)>(StringComparer.Ordinal);
        var reuse = previous is not null && previous.Zone == zone && previous._ttl == ttl ? previous._fragments : null;
        foreach (var service in records.Services)
        {
            if (ZoneLabels.IsReserved(service.Name.Split('.')[0]))
            {
                // Refused at validation (HD1019); a service stored before its name was reserved must not add records to the zone's own names either.
                continue;
            }

            Dictionary<string, NameNode> fragment;
            if (reuse is not null && reuse.TryGetValue(service.Name, out var held) && Same(held.Service, service))
            {
                fragment = held.Names;
            }
            else
            {
                var builder = new Builder(zone);
                AddService(builder, zone, service, ttl);
                fragment = builder.Compile();
            }

            if (!fragments.TryAdd(service.Name, (service, fragment)) || !Merge(names, fragment))
            {
                return BuildWhole(records, zone, nsName, serial, ttl, nameServers);
            }
        }

        return new CompiledZone(zone, names, Authority(zone, nsName, serial, ttl), records.Serial, ttl, fragments);
    }

    /// <summary>Adds a service's names; false when one of them already has records from elsewhere.</summary>
    private static bool Merge(Dictionary<string, NameNode> names, Dictionary<string, NameNode> fragment)
    {
        foreach (var (name, node) in fragment)
        {
            if (names.TryGetValue(name, out var existing))
            {
                if (node.Sets.Count == 0)
                {
                    continue; // an ancestor it made exist, already there
                }

                if (existing.Sets.Count > 0)
                {
                    return false;
                }
            }

            names[name] = node;
        }

        return true;
    }

    /// <summary>Whether two versions of a service say the same (so its compiled names can be kept).</summary>
    private static bool Same(DnsService a, DnsService b) =>
        ReferenceEquals(a, b) || (a.Name == b.Name && a.Vips.SequenceEqual(b.Vips, StringComparer.Ordinal) && a.Roles.Count == b.Roles.Count
            && a.Roles.Zip(b.Roles).All(r => r.First.Name == r.Second.Name && r.First.Instances.Count == r.Second.Instances.Count
                && r.First.Instances.Zip(r.Second.Instances).All(i => i.First.Index == i.Second.Index && i.First.Address == i.Second.Address
                    && i.First.Endpoints.SequenceEqual(i.Second.Endpoints))));

    private static CompiledZone BuildWhole(DnsRecordSet records, string zone, string nsName, uint serial, int ttl, IReadOnlyList<IPAddress> nameServers)
    {
        var builder = new Builder(zone);
        AddApex(builder, zone, nsName, serial, ttl, nameServers);
        foreach (var service in records.Services.Where(s => !ZoneLabels.IsReserved(s.Name.Split('.')[0])))
        {
            AddService(builder, zone, service, ttl);
        }

        return new CompiledZone(zone, builder.Compile(), Authority(zone, nsName, serial, ttl), records.Serial, ttl, new(StringComparer.Ordinal));
    }

    private static byte[] Authority(string zone, string nsName, uint serial, int ttl) =>
        DnsNames.Record(DnsNames.Encode(zone), DnsType.SOA, ttl, Soa(zone, nsName, serial, ttl));

    private static void AddApex(Builder builder, string zone, string nsName, uint serial, int ttl, IReadOnlyList<IPAddress> nameServers)
    {
        builder.Add(zone, DnsType.SOA, Soa(zone, nsName, serial, ttl), ttl);
        builder.Add(zone, DnsType.NS, DnsNames.Encode(nsName), ttl);
        builder.Ensure(nsName);
        foreach (var address in nameServers)
        {
            builder.AddAddress(nsName, address, ttl);
        }

        builder.Add($"{ZoneLabels.Version}.{zone}", DnsType.TXT, Txt("heddle-dns 1"), ttl);
    }

    private static void AddService(Builder builder, string zone, DnsService service, int ttl)
    {
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
        private readonly HashSet<(string Name, ushort Type, byte[] Record)> _seen = new(RecordComparer.Instance);

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
            if (_seen.Add((name, type, record)))
            {
                list.Add(record); // once: a role's SRV set of 10,000 instances compared each record with all before it
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

/// <summary>Compares records by name, type and content.</summary>
internal sealed class RecordComparer : IEqualityComparer<(string Name, ushort Type, byte[] Record)>
{
    public static readonly RecordComparer Instance = new();

    public bool Equals((string Name, ushort Type, byte[] Record) x, (string Name, ushort Type, byte[] Record) y) =>
        x.Type == y.Type && x.Name == y.Name && x.Record.AsSpan().SequenceEqual(y.Record);

    public int GetHashCode((string Name, ushort Type, byte[] Record) r)
    {
        var hash = new HashCode();
        hash.Add(r.Name, StringComparer.Ordinal);
        hash.Add(r.Type);
        hash.AddBytes(r.Record);
        return hash.ToHashCode();
    }
}
