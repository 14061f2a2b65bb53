using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Heddle.Contracts.Api;
using Heddle.Controller.Upgrades;
using Microsoft.Data.Sqlite;

namespace Heddle.Controller.Store;

/// <summary>
/// The embedded cluster store: one SQLite file in WAL mode with synchronous=FULL, so a committed change survives a
/// crash of the process or the machine. One connection, used under a lock: the store is small and SQLite
/// serialises writers anyway.
/// </summary>
public sealed partial class SqliteClusterStore : IClusterStore, ITrustStore
{
    private const int SchemaVersion = 3;
    private static readonly JsonSerializerOptions WalkFormat = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter() } };

    private readonly SqliteConnection _db;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();

    public SqliteClusterStore(string path, TimeProvider time)
    {
        _time = time;
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _db.Open();
        Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;");
        Execute("""
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS packages(sha256 TEXT PRIMARY KEY, bytes INTEGER NOT NULL, service TEXT NOT NULL, service_yaml TEXT NOT NULL, added TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS services(name TEXT PRIMARY KEY, tenant TEXT NOT NULL, revision INTEGER NOT NULL, package_sha256 TEXT NOT NULL,
                configuration TEXT NOT NULL, deleting INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL, vip TEXT);
            CREATE TABLE IF NOT EXISTS instances(service TEXT NOT NULL, role TEXT NOT NULL, idx INTEGER NOT NULL, upgrade_domain INTEGER NOT NULL,
                node TEXT NOT NULL, cpus TEXT NOT NULL, memory_mib INTEGER NOT NULL, generation INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT,
                ports TEXT NOT NULL DEFAULT '{}', restarts INTEGER NOT NULL DEFAULT 0, pid INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL,
                PRIMARY KEY(service, role, idx));
            CREATE INDEX IF NOT EXISTS instances_by_node ON instances(node);
            CREATE TABLE IF NOT EXISTS nodes(name TEXT PRIMARY KEY, address TEXT NOT NULL, fault_domain TEXT NOT NULL, labels TEXT NOT NULL,
                memory_mib INTEGER NOT NULL, cores TEXT NOT NULL, log_url TEXT, condition TEXT NOT NULL, last_seen TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS images(name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, files INTEGER NOT NULL, added TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, message TEXT NOT NULL);
            """);
        Execute($"INSERT OR IGNORE INTO meta(key, value) VALUES('schema', '{SchemaVersion}'), ('generation', '0');");
        if (Query("PRAGMA table_info(services)", r => r.GetString(1)).All(c => c != "vip"))
        {
            Execute("ALTER TABLE services ADD COLUMN vip TEXT"); // stores made before VIPs existed
        }

        Execute("CREATE UNIQUE INDEX IF NOT EXISTS services_by_vip ON services(vip) WHERE vip IS NOT NULL;");
        MigrateToRevisions();
        CreateTrustTables();
    }

    /// <summary>
    /// Schema 2: numbered revisions kept per service, the walk and a row version on services, and on instances the
    /// revision they should run and run, draining, Ready-since and the last failure. A store from before gets a
    /// revision row for each service's current deployment, and its instances are labelled with it.
    /// </summary>
    private void MigrateToRevisions()
    {
        Execute("""
            CREATE TABLE IF NOT EXISTS revisions(service TEXT NOT NULL, number INTEGER NOT NULL, package_sha256 TEXT NOT NULL, configuration TEXT NOT NULL,
                created TEXT NOT NULL, changes TEXT NOT NULL, outcome TEXT NOT NULL, PRIMARY KEY(service, number));
            """);
        AddColumns("services", ("version", "INTEGER NOT NULL DEFAULT 1"), ("last_revision", "INTEGER NOT NULL DEFAULT 0"), ("walk", "TEXT"));
        AddColumns("instances", ("revision", "INTEGER NOT NULL DEFAULT 0"), ("running_revision", "INTEGER NOT NULL DEFAULT 0"), ("draining", "INTEGER NOT NULL DEFAULT 0"),
            ("ready_since", "TEXT"), ("last_failure", "TEXT"), ("last_stderr", "TEXT"));
        AddColumns("nodes", ("isolation", "TEXT"), ("drivers", "TEXT NOT NULL DEFAULT '[\"process\"]'"));
        // Schema 3: slots. A deployment made before belongs to the service of its own name, in production.
        AddColumns("services", ("family", "TEXT"), ("slot", "TEXT NOT NULL DEFAULT 'production'"));
        Execute("UPDATE services SET family = name WHERE family IS NULL");
        Execute("CREATE UNIQUE INDEX IF NOT EXISTS services_by_slot ON services(family, slot);");
        using var tx = _db.BeginTransaction();
        Execute("UPDATE services SET last_revision = revision WHERE last_revision < revision");
        Execute("""
            INSERT OR IGNORE INTO revisions(service, number, package_sha256, configuration, created, changes, outcome)
            SELECT name, revision, package_sha256, configuration, updated, 'deployed before revisions were kept', 'Completed' FROM services
            """);
        Execute("UPDATE instances SET revision = (SELECT revision FROM services WHERE name = instances.service) WHERE revision = 0");
        Execute("UPDATE meta SET value = $v WHERE key = 'schema'", ("$v", SchemaVersion.ToString(CultureInfo.InvariantCulture)));
        tx.Commit();
    }

    private void AddColumns(string table, params (string Name, string Type)[] columns)
    {
        var existing = Query($"PRAGMA table_info({table})", r => r.GetString(1)).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, type) in columns.Where(c => !existing.Contains(c.Name)))
        {
            Execute($"ALTER TABLE {table} ADD COLUMN {name} {type}");
        }
    }

    public void PutPackage(PackageRecord package)
    {
        lock (_lock)
        {
            Execute("INSERT OR IGNORE INTO packages(sha256, bytes, service, service_yaml, added) VALUES($s, $b, $n, $y, $a)",
                ("$s", package.Sha256), ("$b", package.Bytes), ("$n", package.Service), ("$y", package.ServiceYaml), ("$a", Format(package.Added)));
        }
    }

    public PackageRecord? GetPackage(string sha256)
    {
        lock (_lock)
        {
            return Query("SELECT sha256, bytes, service, service_yaml, added FROM packages WHERE sha256 = $s",
                r => new PackageRecord(r.GetString(0), r.GetInt64(1), r.GetString(2), r.GetString(3), Parse(r.GetString(4))), ("$s", sha256)).FirstOrDefault();
        }
    }

    public bool PutImage(ImageRecord image)
    {
        lock (_lock)
        {
            Execute("INSERT OR IGNORE INTO images(name, sha256, bytes, files, added, tenant) VALUES($n, $s, $b, $f, $a, $t)",
                ("$n", image.Name), ("$s", image.Sha256), ("$b", image.Bytes), ("$f", image.Files), ("$a", Format(image.Added)), ("$t", image.Tenant));
            return Scalar<string>("SELECT sha256 FROM images WHERE name = $n", ("$n", image.Name)) == image.Sha256;
        }
    }

    public ImageRecord? GetImage(string name)
    {
        lock (_lock)
        {
            return Query("SELECT name, sha256, bytes, files, added, tenant FROM images WHERE name = $n", ReadImage, ("$n", name)).FirstOrDefault();
        }
    }

    public IReadOnlyList<ImageRecord> ListImages()
    {
        lock (_lock)
        {
            return Query("SELECT name, sha256, bytes, files, added, tenant FROM images ORDER BY name", ReadImage);
        }
    }

    public bool DeleteImage(string name)
    {
        lock (_lock)
        {
            var known = Scalar<string>("SELECT sha256 FROM images WHERE name = $n", ("$n", name)) is not null;
            Execute("DELETE FROM images WHERE name = $n", ("$n", name));
            return known;
        }
    }

    private static ImageRecord ReadImage(SqliteDataReader r) => new(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt32(3), Parse(r.GetString(4)), r.IsDBNull(5) ? null : r.GetString(5));

    public bool PutDeployment(DeploymentWrite write)
    {
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            var current = Query("SELECT version, vip FROM services WHERE name = $n", r => (Version: r.GetInt64(0), Vip: r.IsDBNull(1) ? null : r.GetString(1)), ("$n", write.Service))
                .Cast<(long Version, string? Vip)?>().FirstOrDefault();
            if ((current?.Version ?? 0) != write.ExpectedVersion)
            {
                return false;
            }

            var vip = current?.Vip;
            if (vip is null && write.VipCandidates.Count > 0)
            {
                var taken = Query("SELECT vip FROM services WHERE vip IS NOT NULL", r => r.GetString(0)).ToHashSet(StringComparer.Ordinal);
                vip = write.VipCandidates.FirstOrDefault(c => !taken.Contains(c))
                    ?? throw new InvalidOperationException($"the VIP pool is exhausted: all {write.VipCandidates.Count} addresses are in use");
            }

            var walk = write.Walk is null ? null : JsonSerializer.Serialize(write.Walk, WalkFormat);
            if (current is null && Scalar<string>("SELECT name FROM services WHERE family = $f AND slot = $s", ("$f", write.Family ?? write.Service), ("$s", write.Slot)) is not null)
            {
                return false; // another deployment took this slot meanwhile
            }

            Execute("""
                INSERT INTO services(name, tenant, revision, package_sha256, configuration, deleting, updated, vip, version, last_revision, walk, family, slot)
                VALUES($n, $t, $r, $p, $c, 0, $u, $v, 1, $r, $w, $f, $s)
                ON CONFLICT(name) DO UPDATE SET tenant = $t, revision = $r, package_sha256 = $p, configuration = $c, deleting = 0, updated = $u, vip = $v,
                    version = version + 1, last_revision = $r, walk = COALESCE($w, walk)
                """, ("$n", write.Service), ("$t", write.Tenant), ("$r", write.Number), ("$p", write.PackageSha256), ("$c", write.Configuration), ("$u", Now()),
                ("$v", (object?)vip ?? DBNull.Value), ("$w", (object?)walk ?? DBNull.Value), ("$f", write.Family ?? write.Service), ("$s", write.Slot));
            Execute("UPDATE revisions SET outcome = $o WHERE service = $n AND outcome = $p", ("$n", write.Service),
                ("$o", write.PreviousCompleted ? RevisionOutcomes.Completed : RevisionOutcomes.Superseded), ("$p", RevisionOutcomes.InProgress));
            Execute("""
                INSERT OR REPLACE INTO revisions(service, number, package_sha256, configuration, created, changes, outcome) VALUES($n, $r, $p, $c, $u, $ch, $o)
                """, ("$n", write.Service), ("$r", write.Number), ("$p", write.PackageSha256), ("$c", write.Configuration), ("$u", Now()), ("$ch", write.Changes),
                ("$o", RevisionOutcomes.InProgress));

            // History beyond the limit goes, except what an instance still runs or is to run (a rollback needs it).
            Execute("""
                DELETE FROM revisions WHERE service = $n AND number <= $r - $l
                    AND number NOT IN (SELECT revision FROM instances WHERE service = $n) AND number NOT IN (SELECT running_revision FROM instances WHERE service = $n)
                """, ("$n", write.Service), ("$r", write.Number), ("$l", Math.Max(1, write.HistoryLimit)));
            tx.Commit();
            return true;
        }
    }

    public RevisionRecord? GetRevision(string service, long number)
    {
        lock (_lock)
        {
            return Query(RevisionSelect + " WHERE service = $n AND number = $r", ReadRevision, ("$n", service), ("$r", number)).FirstOrDefault();
        }
    }

    public IReadOnlyList<RevisionRecord> ListRevisions(string service)
    {
        lock (_lock)
        {
            return Query(RevisionSelect + " WHERE service = $n ORDER BY number DESC", ReadRevision, ("$n", service));
        }
    }

    public ServiceRecord? GetService(string name)
    {
        lock (_lock)
        {
            return Query(ServiceSelect + " WHERE name = $n", ReadService, ("$n", name)).FirstOrDefault();
        }
    }

    public IReadOnlyList<ServiceRecord> ListServices()
    {
        lock (_lock)
        {
            return Query(ServiceSelect + " ORDER BY name", ReadService);
        }
    }

    public bool SwapSlots(string first, long firstVersion, string second, long secondVersion)
    {
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            var rows = Query("SELECT name, version, vip, slot FROM services WHERE name IN ($a, $b)",
                r => (Name: r.GetString(0), Version: r.GetInt64(1), Vip: r.IsDBNull(2) ? null : r.GetString(2), Slot: r.GetString(3)), ("$a", first), ("$b", second))
                .ToDictionary(r => r.Name, StringComparer.Ordinal);
            if (!rows.TryGetValue(first, out var a) || !rows.TryGetValue(second, out var b) || a.Version != firstVersion || b.Version != secondVersion)
            {
                return false;
            }

            // Through a moment with neither: (family, slot) and the VIP are each unique.
            Execute("UPDATE services SET slot = '', vip = NULL WHERE name = $a", ("$a", first));
            Execute("UPDATE services SET slot = $s, vip = $v, version = version + 1, updated = $u WHERE name = $b",
                ("$b", second), ("$s", a.Slot), ("$v", (object?)a.Vip ?? DBNull.Value), ("$u", Now()));
            Execute("UPDATE services SET slot = $s, vip = $v, version = version + 1, updated = $u WHERE name = $a",
                ("$a", first), ("$s", b.Slot), ("$v", (object?)b.Vip ?? DBNull.Value), ("$u", Now()));
            tx.Commit();
            return true;
        }
    }

    public bool ChangeVip(string service, string from, string to)
    {
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            if (Scalar<string>("SELECT name FROM services WHERE vip = $to", ("$to", to)) is not null)
            {
                return false;
            }

            var changed = Execute("UPDATE services SET vip = $to, version = version + 1, updated = $u WHERE name = $n AND vip = $from",
                ("$n", service), ("$from", from), ("$to", to), ("$u", Now())) > 0;
            tx.Commit();
            return changed;
        }
    }

    public bool MarkDeleting(string name)
    {
        lock (_lock)
        {
            return Execute("UPDATE services SET deleting = 1, version = version + 1, updated = $u WHERE name = $n", ("$n", name), ("$u", Now())) > 0;
        }
    }

    public void RemoveService(string name)
    {
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            Execute("DELETE FROM instances WHERE service = $n", ("$n", name));
            Execute("DELETE FROM services WHERE name = $n", ("$n", name));
            Execute("DELETE FROM revisions WHERE service = $n", ("$n", name));
            tx.Commit();
        }
    }

    public IReadOnlyList<InstanceRecord> ListInstances(string? service = null)
    {
        lock (_lock)
        {
            return service is null
                ? Query(InstanceSelect + " ORDER BY service, role, idx", ReadInstance)
                : Query(InstanceSelect + " WHERE service = $s ORDER BY role, idx", ReadInstance, ("$s", service));
        }
    }

    public IReadOnlyList<InstanceRecord> ListInstancesOnNode(string node)
    {
        lock (_lock)
        {
            return Query(InstanceSelect + " WHERE node = $n ORDER BY service, role, idx", ReadInstance, ("$n", node));
        }
    }

    public bool CommitPlacement(PlacementCommit commit)
    {
        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            var version = Scalar<long?>("SELECT version FROM services WHERE name = $n", ("$n", commit.Service));
            if (version != commit.ExpectedVersion)
            {
                return false;
            }

            foreach (var (role, index) in commit.Removals)
            {
                Execute("DELETE FROM instances WHERE service = $s AND role = $r AND idx = $i", ("$s", commit.Service), ("$r", role), ("$i", index));
            }

            foreach (var i in commit.Upserts)
            {
                Execute("""
                    INSERT INTO instances(service, role, idx, upgrade_domain, node, cpus, memory_mib, generation, state, reason, ports, restarts, pid, updated,
                        revision, running_revision, draining, ready_since, last_failure, last_stderr)
                    VALUES($s, $r, $i, $ud, $node, $cpus, $mem, $gen, $state, $reason, $ports, 0, 0, $u, $rev, 0, 0, NULL, NULL, NULL)
                    ON CONFLICT(service, role, idx) DO UPDATE SET upgrade_domain = $ud, node = $node, cpus = $cpus, memory_mib = $mem, generation = $gen,
                        state = $state, reason = $reason, ports = $ports, restarts = 0, pid = 0, updated = $u,
                        revision = $rev, running_revision = 0, draining = 0, ready_since = NULL, last_failure = NULL, last_stderr = NULL
                    """,
                    ("$s", i.Service), ("$r", i.Role), ("$i", i.Index), ("$ud", i.UpgradeDomain), ("$node", i.Node), ("$cpus", string.Join(',', i.Cpus)),
                    ("$mem", i.MemoryMiB), ("$gen", i.Generation), ("$state", i.State), ("$reason", (object?)i.Reason ?? DBNull.Value),
                    ("$ports", JsonSerializer.Serialize(i.Ports)), ("$u", Now()), ("$rev", i.Revision));
            }

            foreach (var mark in commit.Marks)
            {
                Execute("UPDATE instances SET revision = $rev, draining = $d WHERE service = $s AND role = $r AND idx = $i",
                    ("$rev", mark.Revision), ("$d", mark.Draining ? 1 : 0), ("$s", commit.Service), ("$r", mark.Role), ("$i", mark.Index));
            }

            if (commit.DesiredRevision is { } desired)
            {
                var revision = Query(RevisionSelect + " WHERE service = $n AND number = $r", ReadRevision, ("$n", commit.Service), ("$r", desired)).FirstOrDefault()
                    ?? throw new InvalidOperationException($"revision {desired} of {commit.Service} is not kept");
                Execute("UPDATE services SET revision = $r, package_sha256 = $p, configuration = $c, updated = $u WHERE name = $n",
                    ("$n", commit.Service), ("$r", desired), ("$p", revision.PackageSha256), ("$c", revision.Configuration), ("$u", Now()));
            }

            if (commit.Walk is { } walk)
            {
                Execute("UPDATE services SET walk = $w WHERE name = $n",
                    ("$n", commit.Service), ("$w", walk.Walk is null ? DBNull.Value : JsonSerializer.Serialize(walk.Walk, WalkFormat)));
            }

            foreach (var (number, outcome) in commit.Outcomes)
            {
                Execute("UPDATE revisions SET outcome = $o WHERE service = $n AND number = $r", ("$n", commit.Service), ("$r", number), ("$o", outcome));
            }

            Execute("UPDATE services SET version = version + 1 WHERE name = $n", ("$n", commit.Service));
            tx.Commit();
            return true;
        }
    }

    public bool UpdateInstanceStatus(InstanceReportRecord report)
    {
        lock (_lock)
        {
            // Ready since: kept while it stays Ready at the same revision, set when it becomes Ready (or Ready at a new one).
            return Execute("""
                UPDATE instances SET
                    ready_since = CASE WHEN $state <> 'Ready' THEN NULL
                                       WHEN state = 'Ready' AND running_revision = $rev AND ready_since IS NOT NULL THEN ready_since ELSE $u END,
                    state = $state, reason = $reason, ports = $ports, restarts = $restarts, pid = $pid, updated = $u, running_revision = $rev,
                    last_failure = COALESCE($failure, last_failure), last_stderr = CASE WHEN $failure IS NULL THEN last_stderr ELSE $stderr END
                WHERE service = $s AND role = $r AND idx = $i AND node = $node AND generation = $gen
                """,
                ("$state", report.State), ("$reason", (object?)report.Reason ?? DBNull.Value), ("$ports", JsonSerializer.Serialize(report.Ports)),
                ("$restarts", report.Restarts), ("$pid", report.Pid), ("$u", Now()), ("$rev", report.Revision),
                ("$failure", (object?)report.Failure ?? DBNull.Value), ("$stderr", (object?)report.LastStderr ?? DBNull.Value),
                ("$s", report.Service), ("$r", report.Role), ("$i", report.Index), ("$node", report.Node), ("$gen", report.Generation)) > 0;
        }
    }

    public long NextGeneration()
    {
        lock (_lock)
        {
            Execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'");
            return long.Parse(Scalar<string>("SELECT value FROM meta WHERE key = 'generation'")!, CultureInfo.InvariantCulture);
        }
    }

    public void PutNode(NodeRecord node)
    {
        lock (_lock)
        {
            Execute("""
                INSERT INTO nodes(name, address, fault_domain, labels, memory_mib, cores, log_url, condition, last_seen, isolation, drivers)
                VALUES($n, $a, $f, $l, $m, $c, $g, $cond, $seen, $iso, $drv)
                ON CONFLICT(name) DO UPDATE SET address = $a, fault_domain = $f, labels = $l, memory_mib = $m, cores = $c, log_url = $g, condition = $cond, last_seen = $seen,
                    isolation = $iso, drivers = $drv
                """, ("$iso", (object?)node.Isolation ?? DBNull.Value), ("$drv", JsonSerializer.Serialize(node.Drivers)),
                ("$n", node.Name), ("$a", node.Address), ("$f", node.FaultDomain), ("$l", JsonSerializer.Serialize(node.Labels)), ("$m", node.MemoryMiB),
                ("$c", JsonSerializer.Serialize(node.Cores)), ("$g", (object?)node.LogUrl ?? DBNull.Value), ("$cond", node.Condition), ("$seen", Format(node.LastSeen)));
        }
    }

    public NodeRecord? GetNode(string name)
    {
        lock (_lock)
        {
            return Query(NodeSelect + " WHERE name = $n", ReadNode, ("$n", name)).FirstOrDefault();
        }
    }

    public IReadOnlyList<NodeRecord> ListNodes()
    {
        lock (_lock)
        {
            return Query(NodeSelect + " ORDER BY name", ReadNode);
        }
    }

    public void SetNodeCondition(string name, string condition, DateTimeOffset lastSeen)
    {
        lock (_lock)
        {
            Execute("UPDATE nodes SET condition = $c, last_seen = $s WHERE name = $n", ("$n", name), ("$c", condition), ("$s", Format(lastSeen)));
        }
    }

    public void PutNodesSeen(IReadOnlyDictionary<string, DateTimeOffset> seen)
    {
    }

    public DateTimeOffset? NodeSeen(string node) => null;

    public EventRecord AddEvent(string kind, string subject, string message)
    {
        lock (_lock)
        {
            var time = _time.GetUtcNow();
            Execute("INSERT INTO events(time, kind, subject, message) VALUES($t, $k, $s, $m)", ("$t", Format(time)), ("$k", kind), ("$s", subject), ("$m", message));
            return new EventRecord(Scalar<long>("SELECT last_insert_rowid()"), time, kind, subject, message);
        }
    }

    public IReadOnlyList<EventRecord> ListEvents(long afterId, int limit)
    {
        lock (_lock)
        {
            return Query("SELECT id, time, kind, subject, message FROM events WHERE id > $a ORDER BY id LIMIT $l",
                r => new EventRecord(r.GetInt64(0), Parse(r.GetString(1)), r.GetString(2), r.GetString(3), r.GetString(4)), ("$a", afterId), ("$l", limit));
        }
    }

    /// <summary>Closes the database once no call is using it (agent streams may still be ending on other threads).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _db.Dispose();
        }
    }

    private const string ServiceSelect = "SELECT name, tenant, revision, package_sha256, configuration, deleting, updated, vip, version, last_revision, walk, family, slot FROM services";
    private const string InstanceSelect = """
        SELECT service, role, idx, upgrade_domain, node, cpus, memory_mib, generation, state, reason, ports, restarts, pid, updated,
            revision, running_revision, draining, ready_since, last_failure, last_stderr FROM instances
        """;
    private const string RevisionSelect = "SELECT service, number, package_sha256, configuration, created, changes, outcome FROM revisions";
    private const string NodeSelect = "SELECT name, address, fault_domain, labels, memory_mib, cores, log_url, condition, last_seen, isolation, drivers FROM nodes";

    private static ServiceRecord ReadService(SqliteDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetString(3), r.GetString(4), r.GetInt64(5) != 0, Parse(r.GetString(6)), r.IsDBNull(7) ? null : r.GetString(7))
        {
            Version = r.GetInt64(8),
            LastRevision = r.GetInt64(9),
            Walk = r.IsDBNull(10) ? null : JsonSerializer.Deserialize<UpgradeWalk>(r.GetString(10), WalkFormat),
            Family = r.IsDBNull(11) ? r.GetString(0) : r.GetString(11),
            Slot = r.GetString(12),
        };

    private static RevisionRecord ReadRevision(SqliteDataReader r) =>
        new(r.GetString(0), r.GetInt64(1), r.GetString(2), r.GetString(3), Parse(r.GetString(4)), r.GetString(5), r.GetString(6));

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
        State = r.GetString(8),
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
        Condition = r.GetString(7),
        LastSeen = Parse(r.GetString(8)),
        Isolation = r.IsDBNull(9) ? null : r.GetString(9),
        Drivers = JsonSerializer.Deserialize<List<string>>(r.GetString(10)) ?? ["process"],
    };

    private string Now() => Format(_time.GetUtcNow());

    private static string Format(DateTimeOffset time) => time.ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset Parse(string text) => DateTimeOffset.Parse(text, CultureInfo.InvariantCulture);

    private int Execute(string sql, params (string Name, object? Value)[] parameters) => _db.Execute(sql, parameters);

    private T? Scalar<T>(string sql, params (string Name, object? Value)[] parameters) => _db.Scalar<T>(sql, parameters);

    private List<T> Query<T>(string sql, Func<SqliteDataReader, T> read, params (string Name, object? Value)[] parameters) => _db.Query(sql, read, parameters);
}
