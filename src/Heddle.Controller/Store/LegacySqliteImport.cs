using System.Globalization;
using System.Text.Json;
using Heddle.Controller.Store.Kv;
using Heddle.Controller.Upgrades;
using Microsoft.Data.Sqlite;

namespace Heddle.Controller.Store;

/// <summary>
/// Brings a cluster.db written by an earlier Heddle (a table per kind of record: services, instances, revisions, ...)
/// onto the key-value layout every store now uses, the first time the new controller opens it: the tables of any
/// earlier schema are brought up to the last one in place, read, loaded into the key-value tables of the same file
/// in one transaction (revisions starting above the last generation handed out, so instance generations keep
/// growing), and then dropped. A crash between the load and the drop is finished at the next open (the load is
/// not repeated). Secrets the oldest stores kept in clear are not carried over.
/// </summary>
public static class LegacySqliteImport
{
    private static readonly string[] Tables = ["events", "certificates", "tokens", "images", "nodes", "instances", "revisions", "services", "packages", "meta"];

    /// <summary>Imports the old tables of <paramref name="path"/> into <paramref name="kv"/> (the same file); false when there were none.</summary>
    public static bool Run(string path, SqliteKeyValueStore kv)
    {
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        db.Open();
        db.Execute("PRAGMA busy_timeout=5000;");
        if (!HasTable(db, "services"))
        {
            return false;
        }

        if (kv.CurrentRevision == 0)
        {
            UpgradeInPlace(db);
            var (commits, generation) = Read(db);
            kv.Load(commits, generation + 1);
        }

        using var tx = db.BeginTransaction();
        foreach (var table in Tables.Where(t => HasTable(db, t)))
        {
            db.Execute($"DROP TABLE {table}");
        }

        tx.Commit();
        return true;
    }

    private static bool HasTable(SqliteConnection db, string name) =>
        db.Scalar<string>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = $n", ("$n", name)) is not null;

    /// <summary>Every column and table the last table schema (3) had, added to a store written before it, with the values the migrations gave them.</summary>
    private static void UpgradeInPlace(SqliteConnection db)
    {
        db.Execute("""
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS packages(sha256 TEXT PRIMARY KEY, bytes INTEGER NOT NULL, service TEXT NOT NULL, service_yaml TEXT NOT NULL, added TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS instances(service TEXT NOT NULL, role TEXT NOT NULL, idx INTEGER NOT NULL, upgrade_domain INTEGER NOT NULL,
                node TEXT NOT NULL, cpus TEXT NOT NULL, memory_mib INTEGER NOT NULL, generation INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT,
                ports TEXT NOT NULL DEFAULT '{}', restarts INTEGER NOT NULL DEFAULT 0, pid INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS nodes(name TEXT PRIMARY KEY, address TEXT NOT NULL, fault_domain TEXT NOT NULL, labels TEXT NOT NULL,
                memory_mib INTEGER NOT NULL, cores TEXT NOT NULL, log_url TEXT, condition TEXT NOT NULL, last_seen TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS images(name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, files INTEGER NOT NULL, added TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, message TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS revisions(service TEXT NOT NULL, number INTEGER NOT NULL, package_sha256 TEXT NOT NULL, configuration TEXT NOT NULL,
                created TEXT NOT NULL, changes TEXT NOT NULL, outcome TEXT NOT NULL, PRIMARY KEY(service, number));
            CREATE TABLE IF NOT EXISTS tokens(hash TEXT PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, tenant TEXT, created TEXT NOT NULL, expires TEXT,
                uses_left INTEGER, revoked INTEGER NOT NULL DEFAULT 0, description TEXT);
            CREATE TABLE IF NOT EXISTS certificates(serial TEXT PRIMARY KEY, node TEXT NOT NULL, not_after TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
            """);
        AddColumns(db, "services", ("vip", "TEXT"), ("version", "INTEGER NOT NULL DEFAULT 1"), ("last_revision", "INTEGER NOT NULL DEFAULT 0"), ("walk", "TEXT"),
            ("family", "TEXT"), ("slot", "TEXT NOT NULL DEFAULT 'production'"));
        AddColumns(db, "instances", ("revision", "INTEGER NOT NULL DEFAULT 0"), ("running_revision", "INTEGER NOT NULL DEFAULT 0"), ("draining", "INTEGER NOT NULL DEFAULT 0"),
            ("ready_since", "TEXT"), ("last_failure", "TEXT"), ("last_stderr", "TEXT"));
        AddColumns(db, "nodes", ("isolation", "TEXT"), ("drivers", "TEXT NOT NULL DEFAULT '[\"process\"]'"));
        AddColumns(db, "images", ("tenant", "TEXT"));
        using var tx = db.BeginTransaction();
        db.Execute("UPDATE services SET family = name WHERE family IS NULL");
        db.Execute("UPDATE services SET last_revision = revision WHERE last_revision < revision");
        db.Execute("""
            INSERT OR IGNORE INTO revisions(service, number, package_sha256, configuration, created, changes, outcome)
            SELECT name, revision, package_sha256, configuration, updated, 'deployed before revisions were kept', 'Completed' FROM services
            """);
        db.Execute("UPDATE instances SET revision = (SELECT revision FROM services WHERE name = instances.service) WHERE revision = 0");
        tx.Commit();
    }

    private static void AddColumns(SqliteConnection db, string table, params (string Name, string Type)[] columns)
    {
        var existing = db.Query($"PRAGMA table_info({table})", r => r.GetString(1)).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, type) in columns.Where(c => !existing.Contains(c.Name)))
        {
            db.Execute($"ALTER TABLE {table} ADD COLUMN {name} {type}");
        }
    }

    /// <summary>Every record as the key-value commits that hold it: one for the state, then one per event (an event's id is its revision).</summary>
    private static (List<IReadOnlyList<KvWrite>> Commits, long Generation) Read(SqliteConnection db)
    {
        var state = new List<KvWrite>();
        foreach (var package in db.Query("SELECT sha256, bytes, service, service_yaml, added FROM packages",
            r => new PackageRecord(r.GetString(0), r.GetInt64(1), r.GetString(2), r.GetString(3), Parse(r.GetString(4)))))
        {
            state.Add(KvClusterStore.Put(KvClusterStore.Keys.Package(package.Sha256), package));
        }

        foreach (var image in db.Query("SELECT name, sha256, bytes, files, added, tenant FROM images",
            r => new ImageRecord(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt32(3), Parse(r.GetString(4)), r.IsDBNull(5) ? null : r.GetString(5))))
        {
            state.Add(KvClusterStore.Put(KvClusterStore.Keys.Image(image.Name), image));
        }

        foreach (var service in db.Query(
            "SELECT name, tenant, revision, package_sha256, configuration, deleting, updated, vip, version, last_revision, walk, family, slot FROM services", ReadService))
        {
            state.Add(KvClusterStore.Put(KvClusterStore.Keys.Service(service.Name), service));
            state.Add(KvClusterStore.Put(KvClusterStore.Keys.Slot(service.Family, service.Slot), service.Name));
            if (service.Vip is not null)
            {
                state.Add(KvClusterStore.Put(KvClusterStore.Keys.Vip(service.Vip), service.Name));
            }
        }

        foreach (var revision in db.Query("SELECT service, number, package_sha256, configuration, created, changes, outcome FROM revisions",
            r => new RevisionRecord(r.GetString(0), r.GetInt64(1), r.GetString(2), r.GetString(3), Parse(r.GetString(4)), r.GetString(5), RevisionOutcome.Parse(r.GetString(6)))))
        {
            state.Add(KvClusterStore.Put(KvClusterStore.Keys.Revision(revision.Service, revision.Number), revision));
        }

        // What its agent last reported stays on the placement record; the next report is stored beside it.
        foreach (var instance in db.Query("""
            SELECT service, role, idx, upgrade_domain, node, cpus, memory_mib, generation, state, reason, ports, restarts, pid, updated,
                revision, running_revision, draining, ready_since, last_failure, last_stderr FROM instances
            """, ReadInstance))
        {
            state.Add(KvClusterStore.Put(KvClusterStore.Keys.Instance(instance.Service, instance.Role, instance.Index), instance));
        }

        foreach (var node in db.Query("SELECT name, address, fault_domain, labels, memory_mib, cores, log_url, condition, last_seen, isolation, drivers FROM nodes", ReadNode))
        {
            state.Add(KvClusterStore.Put(KvClusterStore.Keys.Node(node.Name), node));
        }

        foreach (var token in db.Query("SELECT id, hash, kind, tenant, created, expires, uses_left, revoked, description FROM tokens", r => new TokenRecord(
            r.GetString(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), Parse(r.GetString(4)), r.IsDBNull(5) ? null : Parse(r.GetString(5)),
            r.IsDBNull(6) ? null : r.GetInt32(6), r.GetInt64(7) != 0, r.IsDBNull(8) ? null : r.GetString(8))))
        {
            state.Add(KvClusterStore.Put(KvClusterStore.Keys.Token(token.Hash), token));
        }

        foreach (var certificate in db.Query("SELECT serial, node, not_after, revoked FROM certificates",
            r => new CertificateRecord(r.GetString(0), r.GetString(1), Parse(r.GetString(2)), r.GetInt64(3) != 0)))
        {
            state.Add(KvClusterStore.Put(KvClusterStore.Keys.Certificate(certificate.Serial), certificate));
        }

        var commits = new List<IReadOnlyList<KvWrite>> { state };
        var events = db.Query($"SELECT time, kind, subject, message FROM (SELECT * FROM events ORDER BY id DESC LIMIT {KvClusterStore.KeptEvents}) ORDER BY id",
            r => (Time: Parse(r.GetString(0)), Kind: r.GetString(1), Subject: r.GetString(2), Message: r.GetString(3)));
        commits.AddRange(events.Select(e => (IReadOnlyList<KvWrite>)[KvClusterStore.EventWrite(e.Time, e.Kind, e.Subject, e.Message)]));
        var generation = long.Parse(db.Scalar<string>("SELECT value FROM meta WHERE key = 'generation'") ?? "0", CultureInfo.InvariantCulture);
        var highest = db.Scalar<long?>("SELECT MAX(generation) FROM instances") ?? 0;
        return (commits, Math.Max(generation, highest));
    }

    private static ServiceRecord ReadService(SqliteDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetString(3), r.GetString(4), r.GetInt64(5) != 0, Parse(r.GetString(6)), r.IsDBNull(7) ? null : r.GetString(7))
        {
            Version = r.GetInt64(8),
            LastRevision = r.GetInt64(9),
            Walk = r.IsDBNull(10) ? null : JsonSerializer.Deserialize<UpgradeWalk>(r.GetString(10), KvClusterStore.Format),
            Family = r.IsDBNull(11) ? r.GetString(0) : r.GetString(11),
            Slot = r.GetString(12),
        };

    private static InstanceRecord ReadInstance(SqliteDataReader r) => new()
    {
        Service = r.GetString(0),
        Role = r.GetString(1),
        Index = r.GetInt32(2),
        UpgradeDomain = r.GetInt32(3),
        Node = r.GetString(4),
        Cpus = r.GetString(5).Length == 0 ? [] : [.. r.GetString(5).Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture))],
        MemoryMiB = r.GetInt32(6),
        Generation = r.GetInt64(7),
        State = InstanceStateWords.Parse(r.GetString(8)) ?? InstanceState.Pending, // a word no agent says now: as if it had not reported
        Reason = r.IsDBNull(9) ? null : r.GetString(9),
        Ports = JsonSerializer.Deserialize<Dictionary<string, int>>(r.GetString(10)) ?? [],
        Restarts = r.GetInt32(11),
        Pid = r.GetInt32(12),
        Updated = Parse(r.GetString(13)),
        Revision = r.GetInt64(14),
        RunningRevision = r.GetInt64(15),
        Draining = r.GetInt64(16) != 0,
        ReadySince = r.IsDBNull(17) ? null : Parse(r.GetString(17)),
        LastFailure = r.IsDBNull(18) ? null : r.GetString(18),
        LastStderr = r.IsDBNull(19) ? null : r.GetString(19),
    };

    private static NodeRecord ReadNode(SqliteDataReader r) => new()
    {
        Name = r.GetString(0),
        Address = r.GetString(1),
        FaultDomain = r.GetString(2),
        Labels = JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(3)) ?? [],
        MemoryMiB = r.GetInt32(4),
        Cores = JsonSerializer.Deserialize<List<List<int>>>(r.GetString(5))?.Select(c => (IReadOnlyList<int>)c).ToList() ?? [],
        LogUrl = r.IsDBNull(6) ? null : r.GetString(6),
        Condition = Enum.TryParse<NodeCondition>(r.GetString(7), out var condition) ? condition : NodeCondition.Down, // as placement read any other word
        LastSeen = Parse(r.GetString(8)),
        Isolation = r.IsDBNull(9) ? null : r.GetString(9),
        Drivers = JsonSerializer.Deserialize<List<string>>(r.GetString(10)) ?? [Heddle.Model.Definition.DriverNames.Process],
    };

    private static DateTimeOffset Parse(string text) => DateTimeOffset.Parse(text, CultureInfo.InvariantCulture);
}
