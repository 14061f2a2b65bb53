using System.Text.Json;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>The change feed: each change the mirror takes in, this controller's commits included, as a typed <see cref="StoreChange"/>.</summary>
public sealed partial class KvClusterStore
{
    public event Action<StoreChange>? Changed;

    public event Action<IReadOnlyList<StoreChange>>? Committed;

    /// <summary>Each change to the views and caches that follow <see cref="Changed"/>, and only then the whole batch to <see cref="Committed"/>.</summary>
    private void OnMirrorChanged(IReadOnlyList<KvChange> taken)
    {
        if (Changed is null && Committed is null)
        {
            return;
        }

        var changes = new StoreChange[taken.Count];
        for (var i = 0; i < taken.Count; i++)
        {
            changes[i] = ChangeOf(taken[i]);
            Changed?.Invoke(changes[i]);
        }

        Committed?.Invoke(changes);
    }

    /// <summary>The key prefix of each kind of record: the key names stay here, in the store.</summary>
    private static readonly Dictionary<RecordKind, string> Prefixes = new()
    {
        [RecordKind.Service] = "services",
        [RecordKind.Instance] = "instances",
        [RecordKind.Status] = "status",
        [RecordKind.Node] = "nodes",
        [RecordKind.Image] = "images",
        [RecordKind.Certificate] = "certificates",
        [RecordKind.Event] = "events",
        [RecordKind.Revision] = "revisions",
        [RecordKind.Slot] = "slots",
        [RecordKind.Balancer] = "balancers",
        [RecordKind.Vip] = "vips",
        [RecordKind.HostRollout] = "hostrollouts",
    };

    private static readonly Dictionary<string, RecordKind>.AlternateLookup<ReadOnlySpan<char>> KindOfPrefix =
        Prefixes.ToDictionary(p => p.Value, p => p.Key, StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>What a key's change is about.</summary>
    internal static StoreChange ChangeOf(KvChange taken)
    {
        var change = taken.Event;
        var key = change.Key;
        var deleted = change.Kind == KvEventKind.Delete;
        var source = taken.Source;
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !KindOfPrefix.TryGetValue(key.AsSpan(0, slash), out var kind))
        {
            return new StoreChange(RecordKind.Other, key, deleted, source);
        }

        var rest = key.AsSpan(slash + 1);
        var next = rest.IndexOf('/');
        // Named by the whole rest of the key, or by its first part: the service of "instances/shop/web/0", the node of "nodes/n1".
        var name = kind is RecordKind.Image or RecordKind.Certificate or RecordKind.Event or RecordKind.Vip || next < 0 ? rest.ToString() : rest[..next].ToString();
        return kind switch
        {
            RecordKind.Certificate => new StoreChange(kind, name, deleted, source)
            {
                Certificate = change.Value is null ? null : JsonSerializer.Deserialize<CertificateRecord>(change.Value, Format),
            },
            RecordKind.Event => new StoreChange(kind, name, deleted, source) { Event = EventOf(change) },
            RecordKind.Service => new StoreChange(kind, name, deleted, source) { Service = Both<ServiceRecord>(taken) },
            RecordKind.Instance => new StoreChange(kind, name, deleted, source) { Placement = Both<InstanceRecord>(taken) },
            RecordKind.Status => new StoreChange(kind, name, deleted, source) { Report = ReportOf(taken) },
            RecordKind.Node => new StoreChange(kind, name, deleted, source) { Node = Both<NodeRecord>(taken) },
            RecordKind.HostRollout => new StoreChange(kind, name, deleted, source) { HostRollout = Both<HostRollouts.HostRollout>(taken) },
            _ => new StoreChange(kind, name, deleted, source),
        };
    }

    /// <summary>The record before and after a change (decoded once per entry: the next read of it takes the same).</summary>
    private static Change<T> Both<T>(KvChange taken)
        where T : class =>
        new(taken.Before is { } before ? Decode<T>(before) : null, taken.After is { } after ? Decode<T>(after) : null);

    /// <summary>A status record's change as reports: role and index from its key; the report before counts only when it is of the same generation.</summary>
    private static Change<ReportedState> ReportOf(KvChange taken)
    {
        var key = taken.Event.Key;
        var last = key.LastIndexOf('/');
        var role = key[(key.IndexOf('/', key.IndexOf('/') + 1) + 1)..last];
        var index = int.Parse(key.AsSpan(last + 1), System.Globalization.CultureInfo.InvariantCulture);
        ReportedState? Of(KvEntry? entry) => entry is null ? null
            : Decode<InstanceStatus>(entry) is var s ? new ReportedState(role, index, s.Generation, s.State, s.Restarts, s.RunningRevision, s.Ports) : null;
        var before = Of(taken.Before);
        var after = Of(taken.After);
        return new(before is not null && after is not null && before.Generation != after.Generation ? null : before, after);
    }

    public long VersionOf(RecordKind kind) => Prefixes.TryGetValue(kind, out var prefix)
        ? _mirror.VersionOf(prefix + "/")
        : throw new ArgumentOutOfRangeException(nameof(kind), kind, "records of no kind of their own have no version");
}
