using Heddle.Controller.Leadership;
using Heddle.Controller.Store.Kv;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Store;

/// <summary>The store a controller opened (`--store`) and how its controllers choose a leader.</summary>
public sealed class OpenedStore(KvClusterStore store, EtcdMembers? etcd, string description) : IDisposable
{
    public IClusterStore Cluster => store;

    public ITrustStore Trust => store;

    public IQuotaStore Quotas => store;

    /// <summary>This controller's watch-fed copy of the store.</summary>
    public KvMirror Mirror => store.Mirror;

    /// <summary>Whether other controllers may share the store (etcd): then they follow each other's changes through the watch.</summary>
    public bool Shared => Etcd is not null;

    /// <summary>The etcd members, when the store is etcd; null for the embedded SQLite store.</summary>
    public EtcdMembers? Etcd { get; } = etcd;

    /// <summary>"sqlite /path/cluster.db" or "etcd 127.0.0.1:2379, ..." for people to read.</summary>
    public string Description { get; } = description;

    /// <summary>One controller leads on SQLite (the only one there is); on etcd, the one that wins the election under /heddle/leader.</summary>
    public ILeaderElection Election(string holder, ILogger logger) =>
        Etcd is null ? new SoleLeader(holder) : new EtcdLeaderElection(Etcd, ClusterStores.EtcdRoot + "leader", holder, logger, ClusterStores.EtcdRoot);

    public void Dispose() => Cluster.Dispose();
}

/// <summary>
/// Opens the store `--store` names: <c>sqlite:PATH</c> (the default, PATH defaulting to cluster.db in the state folder) or
/// <c>etcd://host:port[,host:port...]</c>. Both are the same cluster store on the key-value contract; a cluster.db of the
/// earlier table layout is brought over the first time.
/// </summary>
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
            return await OpenSqliteAsync(path, time, cancellationToken);
        }

        var kv = new EtcdKeyValueStore(EtcdKeyValueStore.ParseMembers(options.Store), EtcdRoot);
        return await OverAsync(kv, kv.Members, $"etcd {kv.Members.Names}", time, cancellationToken);
    }

    /// <summary>The embedded store: the key-value contract in one SQLite file (a file of the earlier table layout is brought over first).</summary>
    public static async Task<OpenedStore> OpenSqliteAsync(string path, TimeProvider time, CancellationToken cancellationToken = default)
    {
        var sqlite = new SqliteKeyValueStore(path);
        try
        {
            LegacySqliteImport.Run(path, sqlite);
        }
        catch
        {
            await sqlite.DisposeAsync();
            throw;
        }

        return await OverAsync(sqlite, null, $"sqlite {path}", time, cancellationToken);
    }

    private static async Task<OpenedStore> OverAsync(IKeyValueStore kv, EtcdMembers? etcd, string description, TimeProvider time, CancellationToken cancellationToken)
    {
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
        return new OpenedStore(store, etcd, description);
    }
}
