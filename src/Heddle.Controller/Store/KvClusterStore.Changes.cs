using System.Text.Json;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>The change feed: each change the mirror takes in, this controller's commits included, as a typed <see cref="StoreChange"/>.</summary>
public sealed partial class KvClusterStore
{
    public event Action<StoreChange>? Changed;

    private void OnMirrorChanged(KvEvent change, bool local)
    {
        if (Changed is { } changed)
        {
            changed(ChangeOf(change, local));
        }
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
    internal static StoreChange ChangeOf(KvEvent change, bool local)
    {
        var key = change.Key;
        var deleted = change.Kind == KvEventKind.Delete;
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !KindOfPrefix.TryGetValue(key.AsSpan(0, slash), out var kind))
        {
            return new StoreChange(RecordKind.Other, key, deleted, local);
        }

        var rest = key.AsSpan(slash + 1);
        var next = rest.IndexOf('/');
        // Named by the whole rest of the key, or by its first part: the service of "instances/shop/web/0", the node of "nodes/n1".
        var name = kind is RecordKind.Image or RecordKind.Certificate or RecordKind.Event or RecordKind.Vip || next < 0 ? rest.ToString() : rest[..next].ToString();
        return kind switch
        {
            RecordKind.Certificate => new StoreChange(kind, name, deleted, local)
            {
                Certificate = change.Value is null ? null : JsonSerializer.Deserialize<CertificateRecord>(change.Value, Format),
            },
            RecordKind.Event => new StoreChange(kind, name, deleted, local) { Event = EventOf(change) },
            _ => new StoreChange(kind, name, deleted, local),
        };
    }

    public long VersionOf(RecordKind kind) => Prefixes.TryGetValue(kind, out var prefix)
        ? _mirror.VersionOf(prefix + "/")
        : throw new ArgumentOutOfRangeException(nameof(kind), kind, "records of no kind of their own have no version");
}
