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

    public IMachineStore Machines => store;

    public IHostRolloutStore HostRollouts => store;

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
/// <c>etcd://host:port[,host:port...]</c>, reached over TLS with a client certificate when <see cref="ControllerOptions.EtcdTls"/>
/// names its files. Both are the same cluster store on the key-value contract; a cluster.db of the earlier table layout
/// is brought over the first time.
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

        var members = EtcdKeyValueStore.ParseMembers(options.Store);
        if (options.EtcdTls is null)
        {
            var plain = new EtcdKeyValueStore(members, EtcdRoot);
            return await OverAsync(plain, plain.Members, $"etcd {plain.Members.Names}", time, cancellationToken);
        }

        if (options.EtcdTls.Problem() is { } missing)
        {
            throw new ArgumentException(missing);
        }

        var kv = new EtcdKeyValueStore(options.EtcdTls.Connect(members), EtcdRoot);
        try
        {
            return await OverAsync(kv, kv.Members, $"etcd {kv.Members.Names} (TLS)", time, cancellationToken);
        }
        catch (KvUnavailableException e) when (e.Message.StartsWith("store unavailable: 0 of", StringComparison.Ordinal))
        {
            // No member took the connection at all: over TLS that is most often a certificate one side does not accept.
            throw new KvUnavailableException($"{e.Message}; over TLS, check that --etcd-cert is an etcd client certificate of the CA the members trust "
                + $"('heddle ca issue-etcd-client') and that --etcd-ca {options.EtcdTls.CaFile} is the CA that issued the members' certificates", e);
        }
    }

    /// <summary>
    /// A sentence warning that this controller reaches etcd in clear and without authentication (whoever reaches a member
    /// reads and writes the whole store), or null: the store is not etcd, TLS is on, or every member is on loopback.
    /// </summary>
    public static string? ClearTextWarning(ControllerOptions options)
    {
        if (options.EtcdTls is not null || options.Store is null || Check(options.Store) is not null || !options.Store.StartsWith("etcd://", StringComparison.Ordinal))
        {
            return null;
        }

        var members = EtcdKeyValueStore.ParseMembers(options.Store);
        if (members.All(m => m.IsLoopback))
        {
            return null;
        }

        return $"WARNING: etcd traffic to {string.Join(", ", members.Select(m => m.Authority))} is in clear and unauthenticated: whoever reaches a member reads and writes the whole "
            + "cluster store. Give --etcd-ca, --etcd-cert and --etcd-key (see 'heddle ca --help') and start etcd with TLS and --client-cert-auth.";
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
