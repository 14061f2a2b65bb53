using Heddle.Contracts.Api;
using Heddle.Controller.Store;

namespace Heddle.Controller.Publishing;

/// <summary>
/// A <see cref="StoreProjection{T}"/> made of one part per service, each built again only when the store's change feed
/// says something of its service changed (its record, where its instances are, what their agents reported), or every
/// part when a node changed (the parts hold node addresses). A rebuild after one instance became Ready costs that
/// service, not the cluster: built whole from every service and instance, it was the controller's largest cost while
/// thousands of instances started (issue 27). Whether the view changed is known from the parts rebuilt, so no rebuild
/// serialises the whole view either.
/// </summary>
public abstract class PerServiceProjection<TPart, T> : StoreProjection<T>, IViewChanges
    where TPart : class
    where T : class
{
    protected IClusterStore Store { get; }
    private readonly Lock _marks = new();
    private HashSet<string> _dirty = new(StringComparer.Ordinal);
    private bool _all = true;
    /// <summary>Each service's parts, with the generation at which they last changed.</summary>
    private readonly SortedDictionary<string, (IReadOnlyList<TPart> Parts, UInt128 Fingerprint, long Changed)> _parts = new(StringComparer.Ordinal);

    /// <summary>The services whose parts went, with the generation they went at, oldest first (the last <see cref="RemovalsKept"/>).</summary>
    private readonly Queue<(string Service, long Generation)> _removed = new();

    /// <summary>Removals before this generation are forgotten: a follower holding an older view is sent the whole one.</summary>
    private long _removalsFrom;

    /// <summary>The generation each recent published version was made at (the last <see cref="VersionsKept"/>).</summary>
    private readonly Dictionary<long, long> _generationAt = [];
    private readonly Queue<long> _versions = new();

    private const int RemovalsKept = 16384;
    private const int VersionsKept = 4096;
    private readonly Dictionary<string, HashSet<string>> _families = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _familyOf = new(StringComparer.Ordinal);
    private long _generation;

    protected PerServiceProjection(IClusterStore store)
    {
        Store = store;
        store.Changed += OnChanged;
    }

    private readonly Dictionary<string, long> _built = new(StringComparer.Ordinal);

    /// <summary>Each node's address (under the parts' lock), kept from the nodes the change feed named since the last build.</summary>
    private readonly Dictionary<string, string> _addresses = new(StringComparer.Ordinal);

    /// <summary>The nodes whose records changed since the last build (under <see cref="_marks"/>).</summary>
    private HashSet<string> _dirtyNodes = new(StringComparer.Ordinal);

    /// <summary>How many times a service's parts have been built (for tests: one changed service must not build the others).</summary>
    public long BuildsOf(string service)
    {
        lock (_parts)
        {
            return _built.GetValueOrDefault(service);
        }
    }

    private void OnChanged(StoreChange change)
    {
        switch (change.Kind)
        {
            case RecordKind.Service or RecordKind.Instance or RecordKind.Status:
                lock (_marks)
                {
                    _dirty.Add(change.Name);
                }

                Schedule();
                break;
            case RecordKind.Node:
                // The parts hold node addresses: the next build reads this node's record and builds the services with
                // instances on it if its address came, went or changed (a node's Hello, Down or Ready changes none).
                lock (_marks)
                {
                    _dirtyNodes.Add(change.Name);
                }

                Schedule();
                break;
        }
    }

    /// <summary>The parts of one service (none when it is being deleted or has nothing to publish).</summary>
    protected abstract IReadOnlyList<TPart> BuildService(ServiceRecord service, IReadOnlyDictionary<string, string> nodeAddresses);

    /// <summary>The view of the parts, in service-name order.</summary>
    protected abstract T Assemble(IEnumerable<TPart> parts);

    /// <summary>
    /// What decides whether a service's parts changed: the SHA-256 of their JSON, written into one buffer kept for it
    /// (under the parts' lock). Held as the JSON text itself, it was the controller's largest allocation while nodes came
    /// and went at 2,500 nodes.
    /// </summary>
    private UInt128 FingerprintOf(IReadOnlyList<TPart> parts)
    {
        _json.ResetWrittenCount();
        _writer.Reset(_json);
        System.Text.Json.JsonSerializer.Serialize(_writer, parts, FingerprintJson.Options);
        _writer.Flush();

        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(_json.WrittenSpan, hash);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(hash);
    }

    private readonly System.Buffers.ArrayBufferWriter<byte> _json = new();
    private readonly System.Text.Json.Utf8JsonWriter _writer = new(System.IO.Stream.Null); // pointed at _json for each use

    protected sealed override T Build()
    {
        lock (_parts) // Current may build beside a scheduled rebuild
        {
            HashSet<string> dirty, nodes;
            bool all;
            lock (_marks)
            {
                (dirty, _dirty) = (_dirty, new HashSet<string>(StringComparer.Ordinal));
                (nodes, _dirtyNodes) = (_dirtyNodes, new HashSet<string>(StringComparer.Ordinal));
                (all, _all) = (_all, false);
            }

            if (all)
            {
                dirty = [.. Store.ListServices().Select(s => s.Name), .. _parts.Keys];
                _addresses.Clear();
                foreach (var node in Store.ListNodes())
                {
                    _addresses[node.Name] = node.Address;
                }
            }
            else
            {
                // Only the nodes the feed named are read again: a rebuild costs its services' instances and the nodes
                // that changed, not every node of the cluster. Rebuilding the addresses from the whole node listing
                // after each node's change made enrolling N nodes cost N² (5,000 nodes: 47 MB of dictionaries left to
                // the collector by the DNS projection alone).
                foreach (var name in nodes)
                {
                    var address = Store.GetNode(name)?.Address;
                    var was = _addresses.GetValueOrDefault(name);
                    if (address == was)
                    {
                        continue;
                    }

                    if (address is null)
                    {
                        _addresses.Remove(name);
                    }
                    else
                    {
                        _addresses[name] = address;
                    }

                    MarkServicesOn(name, dirty);
                }
            }

            var records = WithSlotSiblings(dirty);

            foreach (var (name, record) in records)
            {
                var parts = record is { } service ? BuildService(service, _addresses) : [];
                _built[name] = _built.GetValueOrDefault(name) + 1;
                if (parts.Count == 0)
                {
                    if (_parts.Remove(name))
                    {
                        _removed.Enqueue((name, ++_generation));
                        while (_removed.Count > RemovalsKept)
                        {
                            _removalsFrom = _removed.Dequeue().Generation + 1;
                        }
                    }

                    continue;
                }

                var fingerprint = FingerprintOf(parts);
                if (!_parts.TryGetValue(name, out var held) || held.Fingerprint != fingerprint)
                {
                    _parts[name] = (parts, fingerprint, ++_generation); // an unchanged part stays the object it was: the DNS server keeps what it compiled of it
                }
            }

            return Assemble(_parts.Values.SelectMany(p => p.Parts));
        }
    }

    private void MarkServicesOn(string node, HashSet<string> dirty)
    {
        foreach (var instance in Store.ListInstancesOnNode(node))
        {
            dirty.Add(instance.Service);
        }
    }

    /// <summary>
    /// The marked services with every other slot of their family, each with its record as the store has it now (null
    /// when gone). A swap exchanges the VIPs and DNS names of two slots in one commit, but the feed tells of its two
    /// records one after the other, and a rebuild may take the first mark before the second is made: building one slot
    /// from the new store beside the other's part from the old would put one VIP in two listeners (and leave the other
    /// VIP with none) until the next rebuild. Built together, both parts come from the same store.
    /// </summary>
    private List<(string Name, ServiceRecord? Record)> WithSlotSiblings(HashSet<string> dirty)
    {
        var records = new Dictionary<string, ServiceRecord?>(StringComparer.Ordinal);
        var pending = new Queue<string>(dirty);
        while (pending.TryDequeue(out var name))
        {
            if (records.ContainsKey(name))
            {
                continue;
            }

            var record = Store.GetService(name);
            records[name] = record;
            if (record is null)
            {
                // A gone service leaves its family (its name may come back as another family's slot).
                if (_familyOf.Remove(name, out var family))
                {
                    _families[family].Remove(name);
                }

                continue;
            }

            _familyOf[name] = record.Family;
            if (!_families.TryGetValue(record.Family, out var members))
            {
                _families[record.Family] = members = new HashSet<string>(StringComparer.Ordinal);
            }

            members.Add(name);
            foreach (var sibling in members.Where(m => !records.ContainsKey(m)).ToList())
            {
                pending.Enqueue(sibling);
            }
        }

        return [.. records.Select(r => (r.Key, r.Value))];
    }

    /// <summary>Names this projection's versions: another controller's (or this one's before a restart) count others.</summary>
    public string Origin { get; } = Guid.NewGuid().ToString("N");

    protected sealed override void Published(long version, string fingerprint)
    {
        lock (_parts)
        {
            _generationAt[version] = long.Parse(fingerprint, System.Globalization.CultureInfo.InvariantCulture);
            _versions.Enqueue(version);
            while (_versions.Count > VersionsKept)
            {
                _generationAt.Remove(_versions.Dequeue());
            }
        }
    }

    /// <summary>
    /// What a remote follower holding the view of version <paramref name="since"/> needs to hold the view of
    /// <paramref name="version"/> (the last one published): the services whose parts changed since, and those gone; or the whole
    /// view when that version is unknown here (0, too old, or of another <paramref name="origin"/>: another controller's). Parts built after
    /// <paramref name="version"/> was published may come with it: sent again with the next change, they change nothing.
    /// </summary>
    public ViewChange<TPart> ChangesSince(string origin, long since, long version)
    {
        lock (_parts)
        {
            if (origin != Origin || since <= 0 || since > version || !_generationAt.TryGetValue(since, out var from) || from + 1 < _removalsFrom)
            {
                return new ViewChange<TPart>(Origin, 0, version, [.. _parts.Select(p => new ViewPart<TPart>(p.Key, p.Value.Parts))], []);
            }

            return new ViewChange<TPart>(Origin, since, version, [.. _parts.Where(p => p.Value.Changed > from).Select(p => new ViewPart<TPart>(p.Key, p.Value.Parts))],
                [.. _removed.Where(r => r.Generation > from && !_parts.ContainsKey(r.Service)).Select(r => r.Service).Distinct(StringComparer.Ordinal)]);
        }
    }

    object IViewChanges.ChangesSince(string origin, long since, long version) => ChangesSince(origin, since, version);

    /// <summary>Changes whenever a part did: read right after <see cref="Build"/>, under the rebuild lock.</summary>
    protected sealed override string Fingerprint(T view)
    {
        lock (_parts)
        {
            return _generation.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}

/// <summary>A view a remote follower can be sent as changes (<see cref="ViewChange{TPart}"/>), whatever its parts are.</summary>
public interface IViewChanges
{
    /// <summary>Names the view's versions (<see cref="ViewChange{TPart}.Origin"/>).</summary>
    string Origin { get; }

    /// <summary>The version published last.</summary>
    long Version { get; }

    /// <summary>The <see cref="ViewChange{TPart}"/> from <paramref name="since"/> of <paramref name="origin"/> to <paramref name="version"/>, to be serialised as it is.</summary>
    object ChangesSince(string origin, long since, long version);
}
