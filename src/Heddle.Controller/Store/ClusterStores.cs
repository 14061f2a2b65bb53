using Heddle.Controller.Leadership;
using Heddle.Controller.Store.Kv;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Store;

/// <summary>The store a controller opened (`--store`) and how its controllers choose a leader.</summary>
public sealed class OpenedStore(IClusterStore cluster, ITrustStore trust, EtcdMembers? etcd, string description) : IDisposable
{
    public IClusterStore Cluster { get; } = cluster;

    public ITrustStore Trust { get; } = trust;

    /// <summary>The etcd members, when the store is etcd; null for the embedded SQLite store.</summary>
    public EtcdMembers? Etcd { get; } = etcd;

    /// <summary>"sqlite /path/cluster.db" or "etcd 127.0.0.1:2379, ..." for people to read.</summary>
    public string Description { get; } = description;

    /// <summary>One controller leads on SQLite (the only one there is); on etcd, the one that wins the election under /heddle/leader.</summary>
    public ILeaderElection Election(string holder, ILogger logger) =>
        Etcd is null ? new SoleLeader(holder) : new EtcdLeaderElection(Etcd, ClusterStores.EtcdRoot + "leader", holder, logger, ClusterStores.EtcdRoot);

    public void Dispose() => Cluster.Dispose();
}

/// <summary>Opens the store `--store` names: <c>sqlite:PATH</c> (the default, PATH defaulting to cluster.db in the state folder) or <c>etcd://host:port[,host:port...]</c>.</summary>
public static class ClusterStores
{
    /// <summary>Every key Heddle keeps in etcd is under this prefix.</summary>
    public const string EtcdRoot = "/heddle/";

    /// <summary>Checks a `--store` value; a sentence saying what is wrong, or null.</summary>
    public static string? Check(string? store)
    {
        if (store is null || store.StartsWith("sqlite:", StringComparison.Ordinal) && store.Length > "sqlite:".Length)
        {
            return null;
        }

        if (!store.StartsWith("etcd://", StringComparison.Ordinal))
        {
            return $"--store {store}: write sqlite:PATH or etcd://host:port[,host:port...]";
        }

        try
        {
            _ = EtcdKeyValueStore.ParseMembers(store);
            return null;
        }
        catch (FormatException e)
        {
            return $"--store: {e.Message}";
        }
    }

    public static async Task<OpenedStore> OpenAsync(ControllerOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        if (Check(options.Store) is { } problem)
        {
            throw new ArgumentException(problem);
        }

        if (options.Store is null || options.Store.StartsWith("sqlite:", StringComparison.Ordinal))
        {
            var path = options.Store is null ? Path.Combine(options.StateDirectory, "cluster.db") : Path.GetFullPath(options.Store["sqlite:".Length..]);
            var sqlite = new SqliteClusterStore(path, time);
            return new OpenedStore(sqlite, sqlite, null, $"sqlite {path}");
        }

        var members = EtcdKeyValueStore.ParseMembers(options.Store);
        var kv = new EtcdKeyValueStore(members, EtcdRoot);
        KvMirror mirror;
        try
        {
            mirror = await KvMirror.StartAsync(kv, ownsStore: true, cancellationToken);
        }
        catch
        {
            await kv.DisposeAsync();
            throw;
        }

        var store = new KvClusterStore(mirror, time);
        return new OpenedStore(store, store, kv.Members, $"etcd {kv.Members.Names}");
    }
}
