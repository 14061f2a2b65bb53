using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Heddle.Contracts.Api;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>
/// The cluster store on a key-value store (etcd for a replicated controller): each record is a JSON value under a key
/// of its own, and every change that must hold together (a deployment and its revision, a placement pass) is one
/// commit with conditions on the mod revisions of the keys it was computed from, so a controller that read a stale
/// copy fails its commit instead of overwriting a newer one. Reads come from <see cref="KvMirror"/>, this controller's
/// watch-fed copy. Uniqueness that SQLite keeps with indexes is kept with keys created on condition of absence: a
/// VIP (<c>vips/</c>) and a slot of a family (<c>slots/</c>). What an agent reports of an instance is a key of its
/// own (<c>status/</c>), so reports and placement passes never fight over one key; a report is applied only while
/// the instance's placement key is still the one it was read at.
/// </summary>
public sealed partial class KvClusterStore : IClusterStore, ITrustStore
{
    internal static readonly JsonSerializerOptions Format = new(JsonSerializerDefaults.Web) { Converters = { new InstanceStateWords.Json(), new JsonStringEnumConverter(), new IntListJson() } };

    /// <summary>How many events are kept; older ones are deleted in batches.</summary>
    public const int KeptEvents = 10_000;

    private const int Retries = 50;

    private readonly KvMirror _mirror;
    private readonly TimeProvider _time;
    private int _eventsSinceTrim;

    public KvClusterStore(KvMirror mirror, TimeProvider time)
    {
        _mirror = mirror;
        _time = time;
        _placementsByNode = new(mirror, "instances/", i => i.Node);
        _certificatesByNode = new(mirror, "certificates/", c => c.Node);
        mirror.Changed += OnMirrorChanged;
    }

    public KvMirror Mirror => _mirror;

    public async Task PutPackageAsync(PackageRecord package, CancellationToken cancellationToken = default)
    {
        if (_mirror.Get(Keys.Package(package.Sha256)) is null)
        {
            await CommitAsync([new KvCondition(Keys.Package(package.Sha256), 0)], [Put(Keys.Package(package.Sha256), package)], cancellationToken);
        }
    }

    public PackageRecord? GetPackage(string sha256) => Read<PackageRecord>(Keys.Package(sha256));

    public RevisionRecord? GetRevision(string service, long number) => Read<RevisionRecord>(Keys.Revision(service, number));

    public IReadOnlyList<RevisionRecord> ListRevisions(string service) => [.. ReadAll<RevisionRecord>(Keys.Revisions(service)).OrderByDescending(r => r.Number)];

    public ServiceRecord? GetService(string name) => _mirror.Get(Keys.Service(name)) is { } entry ? ServiceOf(entry) : null;

    public IReadOnlyList<ServiceRecord> ListServices() => [.. _mirror.List("services/").Select(ServiceOf)];

    /// <summary>A service as read, with its incarnation: the revision that created its key, new whenever a deleted name is deployed again.</summary>
    private static ServiceRecord ServiceOf(KvEntry entry) => Decode<ServiceRecord>(entry) with { Incarnation = entry.CreateRevision };

    /// <summary>Gives a deployment written before uids were the controller's the uid <paramref name="uid"/>; false when it has one or another holds that uid.</summary>
    public async Task<bool> AssignUidAsync(string name, int uid, CancellationToken cancellationToken = default)
    {
        var entry = _mirror.Get(Keys.Service(name));
        if (entry is null || Decode<ServiceRecord>(entry) is not { Uid: 0 } record || _mirror.Get(Keys.Uid(uid)) is not null)
        {
            return false;
        }

        var writes = new Writes();
        writes.Put(entry.Key, record with { Uid = uid, Version = record.Version + 1 });
        writes.Put(Keys.Uid(uid), name);
        return await CommitAsync([new(entry.Key, entry.ModRevision), new(Keys.Uid(uid), 0)], writes.List, cancellationToken);
    }

    public Task<bool> MarkDeletingAsync(string name, CancellationToken cancellationToken = default, NewEvent? told = null) =>
        ChangeAsync<ServiceRecord>(Keys.Service(name), s => s with { Deleting = true, Version = s.Version + 1, Updated = _time.GetUtcNow() }, cancellationToken, told: told);

    public async Task<bool> SwapSlotsAsync(string first, long firstVersion, string second, long secondVersion, CancellationToken cancellationToken = default)
    {
        var (aEntry, bEntry) = (_mirror.Get(Keys.Service(first)), _mirror.Get(Keys.Service(second)));
        if (aEntry is null || bEntry is null)
        {
            return false;
        }

        var (a, b) = (Decode<ServiceRecord>(aEntry), Decode<ServiceRecord>(bEntry));
        if (a.Version != firstVersion || b.Version != secondVersion)
        {
            return false;
        }

        var now = _time.GetUtcNow();
        var writes = new Writes();
        writes.Put(aEntry.Key, a with { Slot = b.Slot, Vip = b.Vip, Version = a.Version + 1, Updated = now });
        writes.Put(bEntry.Key, b with { Slot = a.Slot, Vip = a.Vip, Version = b.Version + 1, Updated = now });
        writes.Put(Keys.Slot(a.Family, b.Slot), first);
        writes.Put(Keys.Slot(b.Family, a.Slot), second);
        if (a.Vip is not null)
        {
            writes.Put(Keys.Vip(a.Vip), second);
        }

        if (b.Vip is not null)
        {
            writes.Put(Keys.Vip(b.Vip), first);
        }

        return await CommitAsync([new(aEntry.Key, aEntry.ModRevision), new(bEntry.Key, bEntry.ModRevision)], writes.List, cancellationToken);
    }

    public async Task<bool> ChangeVipAsync(string service, string from, string to, CancellationToken cancellationToken = default)
    {
        var entry = _mirror.Get(Keys.Service(service));
        if (entry is null || Decode<ServiceRecord>(entry) is not { } record || record.Vip != from || _mirror.Get(Keys.Vip(to)) is not null)
        {
            return false;
        }

        var writes = new Writes();
        writes.Put(entry.Key, record with { Vip = to, Version = record.Version + 1, Updated = _time.GetUtcNow() });
        writes.Delete(Keys.Vip(from));
        writes.Put(Keys.Vip(to), service);
        return await CommitAsync([new(entry.Key, entry.ModRevision), new(Keys.Vip(to), 0)], writes.List, cancellationToken);
    }

    public async Task RemoveServiceAsync(string name, CancellationToken cancellationToken = default, NewEvent? told = null)
    {
        var writes = new Writes();
        if (GetService(name) is { } service)
        {
            writes.Delete(Keys.Slot(service.Family, service.Slot));
            if (service.Vip is not null && Read<string>(Keys.Vip(service.Vip)) == name)
            {
                writes.Delete(Keys.Vip(service.Vip));
            }

            if (service.Uid != 0 && Read<string>(Keys.Uid(service.Uid)) == name)
            {
                writes.Delete(Keys.Uid(service.Uid));
            }
        }

        writes.Delete(Keys.Service(name));
        foreach (var prefix in new[] { Keys.Instances(name), Keys.Statuses(name), Keys.Revisions(name) })
        {
            foreach (var entry in _mirror.List(prefix))
            {
                writes.Delete(entry.Key);
            }
        }

        await CommitToldAsync([], writes.List, Told(told), ChangeSource.Reconciler, cancellationToken);
    }

    /// <summary>The revision of a commit made for it: unique and growing across every controller, with no counter to contend for.</summary>
    public async Task<long> NextGenerationAsync(CancellationToken cancellationToken = default) =>
        (await _mirror.CommitAsync([], [KvWrite.Put(Keys.Generation, "{}"u8.ToArray())], cancellationToken)).Revision;

    public Task PutNodeAsync(NodeRecord node, CancellationToken cancellationToken = default, NewEvent? told = null) =>
        CommitToldAsync([], [Put(Keys.Node(node.Name), node)], Told(told), ChangeSource.Here, cancellationToken);

    public NodeRecord? GetNode(string name) => Read<NodeRecord>(Keys.Node(name));

    /// <summary>
    /// Every node, listed again only after a node changed: every reconciler pass reads them all (placement chooses among
    /// them), and at 2,500 nodes listing them on each pass was a cost of every report. The version is read before the
    /// listing, so a change after it lists them again on the next read.
    /// </summary>
    public IReadOnlyList<NodeRecord> ListNodes()
    {
        var version = NodesVersion;
        if (_nodes is { } listed && listed.Version == version)
        {
            return listed.Nodes;
        }

        var nodes = ReadAll<NodeRecord>("nodes/").AsReadOnly();
        _nodes = new NodeListing(version, nodes);
        return nodes;
    }

    private volatile NodeListing? _nodes;

    private sealed record NodeListing(long Version, IReadOnlyList<NodeRecord> Nodes);

    public long NodesVersion => _mirror.VersionOf("nodes/");

    public Task<bool> SetNodeConditionAsync(string name, NodeCondition condition, DateTimeOffset lastSeen, (string Key, long Revision)? fence = null,
        CancellationToken cancellationToken = default, NewEvent? told = null) =>
        ChangeAsync<NodeRecord>(Keys.Node(name), n => n with { Condition = condition, LastSeen = lastSeen }, cancellationToken, fence, told);

    public async Task PutNodesSeenAsync(IReadOnlyDictionary<string, DateTimeOffset> seen, CancellationToken cancellationToken = default)
    {
        if (seen.Count > 0)
        {
            await CommitAsync([], [.. seen.Select(s => Put(Keys.Seen(s.Key), new NodeHeard(s.Value)))], cancellationToken);
        }
    }

    public DateTimeOffset? NodeSeen(string node) => Read<NodeHeard>(Keys.Seen(node))?.At;

    private sealed record NodeHeard(DateTimeOffset At);

    public async Task<long> OpenNodeSessionAsync(string node, CancellationToken cancellationToken = default) =>
        (await _mirror.CommitAsync([], [Put(Keys.Session(node), new NodeSessionOpened(_time.GetUtcNow()))], cancellationToken)).Revision;

    public long NodeSession(string node) => _mirror.Get(Keys.Session(node))?.ModRevision ?? 0;

    /// <summary>A node's stream session: the revision that wrote it is the session; when is only for a reader of the store.</summary>
    private sealed record NodeSessionOpened(DateTimeOffset At);

    /// <summary>An event's id is the store revision that recorded it: unique and growing across every controller, with no counter to contend for.</summary>
    public async Task<EventRecord> AddEventAsync(EventKind eventKind, string subject, string message, EventOwner? owner = null, CancellationToken cancellationToken = default)
    {
        var kind = eventKind.ToString();
        var time = _time.GetUtcNow();
        var write = EventWrite(time, kind, subject, message, owner);
        var result = await _mirror.CommitAsync([new(write.Key, 0)], [write], cancellationToken);
        await EventsWrittenAsync(1, cancellationToken);
        return Recorded(result.Revision, time, kind, subject, message, owner);
    }

    /// <summary>How many events are written between two trims of the log down to <see cref="KeptEvents"/>.</summary>
    private const int TrimEvery = 500;

    /// <summary>Counts events this store wrote, and trims the log each time the count passes a multiple of <see cref="TrimEvery"/>.</summary>
    private async Task EventsWrittenAsync(int count, CancellationToken cancellationToken)
    {
        var after = Interlocked.Add(ref _eventsSinceTrim, count);
        if ((after - count) / TrimEvery != after / TrimEvery)
        {
            await TrimEventsAsync(cancellationToken);
        }
    }

    /// <summary>An event as the commit with the given revision recorded it.</summary>
    private static EventRecord Recorded(long revision, DateTimeOffset time, string kind, string subject, string message, EventOwner? owner) =>
        new StoredEvent(time, kind, subject, message, owner?.Tenant, owner?.Incarnation).ToRecord(revision);

    /// <summary>The write that records an event (under a key of its own, in time order); the kind as stored, an <see cref="EventKind"/>'s name.</summary>
    internal static KvWrite EventWrite(DateTimeOffset time, string kind, string subject, string message, EventOwner? owner = null) =>
        Put(Keys.Event(time), new StoredEvent(time, kind, subject, message, owner?.Tenant, owner?.Incarnation));

    public IReadOnlyList<EventRecord> ListEvents(long afterId, int limit) =>
        [.. _mirror.List("events/").Where(e => e.CreateRevision > afterId).OrderBy(e => e.CreateRevision).Take(limit).Select(ToEvent)];

    private async Task TrimEventsAsync(CancellationToken cancellationToken)
    {
        var events = _mirror.List("events/");
        if (events.Count > KeptEvents)
        {
            var writes = new Writes();
            foreach (var old in events.OrderBy(e => e.CreateRevision).Take(events.Count - KeptEvents))
            {
                writes.Delete(old.Key);
            }

            await CommitAsync([], writes.List, cancellationToken);
        }
    }

    /// <summary>The event a watched change stored (its id is the change's revision), or null when the change is not one.</summary>
    private static EventRecord? EventOf(KvEvent change)
    {
        if (change.Kind != KvEventKind.Put || !change.Key.StartsWith("events/", StringComparison.Ordinal) || change.Value is null)
        {
            return null;
        }

        return JsonSerializer.Deserialize<StoredEvent>(change.Value, Format)!.ToRecord(change.Revision);
    }

    private static EventRecord ToEvent(KvEntry entry) => Decode<StoredEvent>(entry).ToRecord(entry.CreateRevision);

    /// <summary>An event as stored; one written before events had owners has neither tenant nor incarnation (an admin's to see).</summary>
    private sealed record StoredEvent(DateTimeOffset Time, string Kind, string Subject, string Message, string? Tenant = null, long? Incarnation = null)
    {
        public EventRecord ToRecord(long id) => new(id, Time, Kind, Subject, Message) { Tenant = Tenant, Incarnation = Incarnation };
    }

    /// <summary>Stops following the store (and closes it when the mirror owns it).</summary>
    public void Dispose() => _mirror.DisposeAsync().AsTask().GetAwaiter().GetResult();

    // ---- the plumbing shared by every record ----

    private T? Read<T>(string key)
        where T : class => _mirror.Get(key) is { } entry ? Decode<T>(entry) : null;

    private List<T> ReadAll<T>(string prefix) => [.. _mirror.List(prefix).Select(Decode<T>)];

    /// <summary>
    /// Each entry decoded once (kept on the entry): the mirror replaces an entry whole when its key changes, and records are
    /// immutable, so the value decoded from one entry can be handed to every reader. Without it every listing parsed the
    /// JSON of every record it named (a goal state decoded every instance of the cluster).
    /// </summary>
    internal static T Decode<T>(KvEntry entry)
    {
        if (entry.Decoded is T known)
        {
            return known;
        }

        var value = JsonSerializer.Deserialize<T>(entry.Value, Format) ?? throw new InvalidDataException($"the store holds null at {entry.Key}");
        entry.Decoded = value;
        return value;
    }

    internal static KvWrite Put<T>(string key, T value) => KvWrite.Put(key, JsonSerializer.SerializeToUtf8Bytes(value, Format));

    /// <summary>Read, change, write on condition that nothing changed the key meanwhile; read again and retry when something did. False when the key is absent.</summary>
    private async Task<bool> ChangeAsync<T>(string key, Func<T, T?> change, CancellationToken cancellationToken, (string Key, long Revision)? fence = null, NewEvent? told = null)
        where T : class
    {
        for (var attempt = 0; attempt < Retries; attempt++)
        {

            if (_mirror.Get(key) is not { } entry)
            {
                return false;
            }

            if (change(Decode<T>(entry)) is not { } next)
            {
                return false;
            }

            KvCondition[] conditions = fence is { } held ? [new(key, entry.ModRevision), new(held.Key, held.Revision)] : [new(key, entry.ModRevision)];
            if (await CommitToldAsync(conditions, [Put(key, next)], Told(told), ChangeSource.Here, cancellationToken))
            {
                return true;
            }

            if (fence is not null && _mirror.Get(key)?.ModRevision == entry.ModRevision)
            {
                // The record is as it was, so the term failed the condition: it has ended. (Or this copy of the store has
                // not yet seen the record's change; the caller asks again on its next pass either way.)
                return false;
            }
        }

        throw new KvUnavailableException($"store busy: {key} changed under {Retries} writes in a row");
    }

    private async Task<bool> CommitAsync(IReadOnlyList<KvCondition> conditions, IReadOnlyList<KvWrite> writes, CancellationToken cancellationToken) =>
        (await _mirror.CommitAsync(conditions, writes, cancellationToken)).Succeeded;

    /// <summary>
    /// Commits, then stores the events that tell of it (each in a commit of its own: an event's id is its commit's
    /// revision), and only then tells the change feed of them all: whatever the feed sets going (a reconcile, a goal state
    /// sent) writes its events after these. False, and no event, when a condition failed.
    /// </summary>
    private Task<bool> CommitToldAsync(IReadOnlyList<KvCondition> conditions, IReadOnlyList<KvWrite> writes, IReadOnlyList<NewEvent> told, ChangeSource source,
        CancellationToken cancellationToken) =>
        CommitToldAsync(conditions, writes, _ => told, told.Count > 0, source, cancellationToken);

    /// <summary>As above, the events made from the commit's revision (the incarnation of a service it creates).</summary>
    private async Task<bool> CommitToldAsync(IReadOnlyList<KvCondition> conditions, IReadOnlyList<KvWrite> writes, Func<long, IReadOnlyList<NewEvent>> told, bool any,
        ChangeSource source, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var results = await _mirror.CommitThenAsync(new KvBatchItem(conditions, writes),
            revision => [.. told(revision).Select(e => EventWrite(now, e.Kind.ToString(), e.Subject, e.Message, e.Owner)).Select(w => new KvBatchItem([new(w.Key, 0)], [w]))],
            source, cancellationToken, told: any);
        if (results.Count > 1)
        {
            await EventsWrittenAsync(results.Count - 1, cancellationToken);
        }

        return results[0].Succeeded;
    }

    private static IReadOnlyList<NewEvent> Told(NewEvent? told) => told is null ? [] : [told];

    /// <summary>The writes of one commit, each key at most once (the last write of a key wins).</summary>
    private sealed class Writes
    {
        private readonly Dictionary<string, KvWrite> _writes = new(StringComparer.Ordinal);

        public List<KvWrite> List => [.. _writes.Values];

        public void Put<T>(string key, T value) => _writes[key] = KvClusterStore.Put(key, value);

        public void Delete(string key) => _writes[key] = KvWrite.Delete(key);
    }

    /// <summary>Where each record lives. Numbers are zero-padded so key order is numeric order.</summary>
    internal static class Keys
    {
        public const string Generation = "meta/generation";

        public static string Package(string sha256) => $"packages/{sha256}";

        public static string Image(string name) => $"images/{name}";

        public static string Service(string name) => $"services/{name}";

        public static string Vip(string vip) => $"vips/{vip}";

        public static string Uid(int uid) => $"uids/{uid.ToString("D10", CultureInfo.InvariantCulture)}";

        public static string Slot(string family, string slot) => $"slots/{family}/{slot}";

        public static string Revisions(string service) => $"revisions/{service}/";

        public static string Revision(string service, long number) => $"revisions/{service}/{number.ToString("D19", CultureInfo.InvariantCulture)}";

        public static string Instances(string service) => $"instances/{service}/";

        public static string Instance(string service, string role, int index) => $"instances/{service}/{role}/{index.ToString("D9", CultureInfo.InvariantCulture)}";

        public static string Statuses(string service) => $"status/{service}/";

        public static string Status(string service, string role, int index) => $"status/{service}/{role}/{index.ToString("D9", CultureInfo.InvariantCulture)}";

        public static string Node(string name) => $"nodes/{name}";

        public static string Seen(string node) => $"seen/{node}";

        public static string Session(string node) => $"sessions/{node}";

        public static string Token(string hash) => $"tokens/{hash}";

        public static string Certificate(string serial) => $"certificates/{serial}";

        public static string Quota(string tenant) => $"quotas/{tenant}";

        public static string Machine(string name) => $"machines/{name}";

        public static string MachineMac(string mac) => $"machine-macs/{mac}";

        public static string HostImage(string name) => $"hostimages/{name}";

        public const string HostRollout = "hostrollouts/current";

        /// <summary>Rewritten by every deployment a tenant's quota is checked for, so two checked at once cannot both commit.</summary>
        public static string TenantAccepts(string tenant) => $"tenant-accepts/{tenant}";

        public static string Event(DateTimeOffset time) => $"events/{time.UtcTicks.ToString("D19", CultureInfo.InvariantCulture)}-{Guid.NewGuid():N}";
    }
}
