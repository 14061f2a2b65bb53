using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;

namespace Heddle.Testing;

/// <summary>Cluster stores on key-value stores, for tests.</summary>
public static class KvStores
{
    /// <summary>A cluster store over a fresh in-memory key-value store, which it owns.</summary>
    public static KvClusterStore InMemory(TimeProvider time) => Over(new InMemoryKeyValueStore(), time, ownsStore: true);

    /// <summary>A cluster store (a controller's view) over a key-value store that others may share.</summary>
    public static KvClusterStore Over(IKeyValueStore store, TimeProvider time, bool ownsStore = false) =>
        new(KvMirror.StartAsync(store, ownsStore).GetAwaiter().GetResult(), time);
}
