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

    /// <summary>What a key's change is about: the key names stay here, in the store.</summary>
    internal static StoreChange ChangeOf(KvEvent change, bool local)
    {
        var key = change.Key;
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return new StoreChange(RecordKind.Other, key, change.Kind == KvEventKind.Delete, local);
        }

        var deleted = change.Kind == KvEventKind.Delete;
        var rest = key.AsSpan(slash + 1);
        var next = rest.IndexOf('/');
        var name = (next < 0 ? rest : rest[..next]).ToString(); // the service of "instances/shop/web/0", the node of "nodes/n1"
        return key.AsSpan(0, slash) switch
        {
            "services" => new StoreChange(RecordKind.Service, name, deleted, local),
            "instances" => new StoreChange(RecordKind.Instance, name, deleted, local),
            "status" => new StoreChange(RecordKind.Status, name, deleted, local),
            "nodes" => new StoreChange(RecordKind.Node, name, deleted, local),
            "images" => new StoreChange(RecordKind.Image, rest.ToString(), deleted, local),
            "certificates" => new StoreChange(RecordKind.Certificate, rest.ToString(), deleted, local)
            {
                Certificate = change.Value is null ? null : JsonSerializer.Deserialize<CertificateRecord>(change.Value, Format),
            },
            "events" => new StoreChange(RecordKind.Event, rest.ToString(), deleted, local) { Event = EventOf(change) },
            "revisions" => new StoreChange(RecordKind.Revision, name, deleted, local),
            "slots" => new StoreChange(RecordKind.Slot, name, deleted, local),
            "balancers" => new StoreChange(RecordKind.Balancer, name, deleted, local),
            "vips" => new StoreChange(RecordKind.Vip, rest.ToString(), deleted, local),
            _ => new StoreChange(RecordKind.Other, key, deleted, local),
        };
    }

    public long VersionOf(RecordKind kind) => _mirror.VersionOf(kind switch
    {
        RecordKind.Service => "services/",
        RecordKind.Instance => "instances/",
        RecordKind.Status => "status/",
        RecordKind.Node => "nodes/",
        RecordKind.Image => "images/",
        RecordKind.Certificate => "certificates/",
        RecordKind.Event => "events/",
        RecordKind.Revision => "revisions/",
        RecordKind.Slot => "slots/",
        RecordKind.Balancer => "balancers/",
        RecordKind.Vip => "vips/",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "records of no kind of their own have no version"),
    });
}
