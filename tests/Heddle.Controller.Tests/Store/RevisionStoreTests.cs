using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;
using Heddle.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Store;

/// <summary>Revisions in the SQLite store: numbered, guarded by the service's version, trimmed to the history limit, migrated from before.</summary>
public sealed class RevisionStoreTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero));

    public void Dispose() => _directory.Dispose();

    private IClusterStore Open() => ClusterStores.OpenSqliteAsync(_directory.Combine("cluster.db"), _time).GetAwaiter().GetResult().Cluster;

    private static DeploymentWrite Write(long number, long expectedVersion, int limit = 10) =>
        new("hello", "default", number, new string('a', 64), $"service: hello # {number}", $"change {number}", expectedVersion) { HistoryLimit = limit };

    private static InstanceRecord Instance(long revision) => new()
    {
        Service = "hello", Role = "web", Index = 0, UpgradeDomain = 0, Node = "n1", Cpus = [0], MemoryMiB = 64, Generation = 1, Revision = revision,
    };

    [Fact]
    public async Task PutDeployment_BeyondTheLimit_ForgetsTheOldest_ButKeepsWhatAnInstanceRuns()
    {
        using var store = Open();
        Assert.True(await store.PutDeploymentAsync(Write(1, 0)));
        Assert.True(await store.CommitPlacementAsync(new PlacementCommit("hello", store.GetService("hello")!.Version, [Instance(1)], [])));
        for (var n = 2; n <= 12; n++)
        {
            Assert.True(await store.PutDeploymentAsync(Write(n, store.GetService("hello")!.Version, limit: 5)));
        }

        Assert.Equal([12L, 11, 10, 9, 8, 1], store.ListRevisions("hello").Select(r => r.Number));
        Assert.Equal("Superseded", store.GetRevision("hello", 11)!.Outcome.ToString());
        Assert.Equal("InProgress", store.GetRevision("hello", 12)!.Outcome.ToString());
        Assert.Equal((12L, 12L), (store.GetService("hello")!.Revision, store.GetService("hello")!.LastRevision));
    }

    [Fact]
    public async Task PutDeployment_FromAStaleRead_ChangesNothing()
    {
        using var store = Open();
        Assert.True(await store.PutDeploymentAsync(Write(1, 0)));
        var read = store.GetService("hello")!;
        Assert.True(await store.PutDeploymentAsync(Write(2, read.Version)));

        Assert.False(await store.PutDeploymentAsync(Write(2, read.Version)));
        Assert.False(await store.PutDeploymentAsync(Write(1, 0)));
        Assert.Equal([2L, 1L], store.ListRevisions("hello").Select(r => r.Number));
    }

    [Fact]
    public async Task CommitPlacement_WithAWalk_SurvivesAReopen()
    {
        var walk = new UpgradeWalk
        {
            Revision = 2, Previous = 1, Policy = Model.Configuration.UpgradePolicy.Default with { Mode = Model.Configuration.UpgradeMode.Manual },
            Order = [0, 1, 2], Position = 1, Phase = WalkPhase.Updating, Started = _time.GetUtcNow(), PhaseStarted = _time.GetUtcNow(),
        };
        using (var store = Open())
        {
            Assert.True(await store.PutDeploymentAsync(Write(1, 0)));
            Assert.True(await store.PutDeploymentAsync(Write(2, store.GetService("hello")!.Version) with { Walk = walk }));
        }

        using var reopened = Open();
        Assert.Equal(walk, reopened.GetService("hello")!.Walk! with { Order = walk.Order });
        Assert.Equal([0, 1, 2], reopened.GetService("hello")!.Walk!.Order);
        Assert.True(reopened.GetService("hello")!.UpgradeInProgress);
    }

    /// <summary>A cluster.db as an earlier Heddle wrote it (a table per record kind), made by the SQL given.</summary>
    private string WriteTables(string sql)
    {
        var path = _directory.Combine("cluster.db");
        using var db = new SqliteConnection($"Data Source={path};Pooling=False");
        db.Open();
        using var create = db.CreateCommand();
        create.CommandText = sql;
        create.ExecuteNonQuery();
        return path;
    }

    [Fact]
    public void Open_AStoreFromBeforeRevisions_GivesEachServiceItsRevisionAndLabelsItsInstances()
    {
        var path = WriteTables("""
                CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO meta VALUES('schema', '1'), ('generation', '7');
                CREATE TABLE services(name TEXT PRIMARY KEY, tenant TEXT NOT NULL, revision INTEGER NOT NULL, package_sha256 TEXT NOT NULL,
                    configuration TEXT NOT NULL, deleting INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL, vip TEXT);
                CREATE TABLE instances(service TEXT NOT NULL, role TEXT NOT NULL, idx INTEGER NOT NULL, upgrade_domain INTEGER NOT NULL,
                    node TEXT NOT NULL, cpus TEXT NOT NULL, memory_mib INTEGER NOT NULL, generation INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT,
                    ports TEXT NOT NULL DEFAULT '{}', restarts INTEGER NOT NULL DEFAULT 0, pid INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL,
                    PRIMARY KEY(service, role, idx));
                INSERT INTO services VALUES('hello', 'default', 4, 'abc', 'service: hello', 0, '2026-11-01T00:00:00.0000000+00:00', '127.77.0.1');
                INSERT INTO instances VALUES('hello', 'web', 0, 0, 'n1', '0', 64, 7, 'Ready', NULL, '{}', 0, 1234, '2026-11-01T00:00:00.0000000+00:00');
                """);

        using var store = Open();

        var revision = Assert.Single(store.ListRevisions("hello"));
        Assert.Equal((4L, "abc", "Completed"), (revision.Number, revision.PackageSha256, revision.Outcome.ToString()));
        Assert.Equal(4, Assert.Single(store.ListInstances("hello")).Revision);
        Assert.Equal(4, store.GetService("hello")!.LastRevision);
    }

    [Fact]
    public async Task Open_AStoreOfTheTableLayout_BringsEverythingOver_Once()
    {
        var path = WriteTables("""
                CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO meta VALUES('schema', '3'), ('generation', '41'), ('secret:join', 'cleartext');
                CREATE TABLE packages(sha256 TEXT PRIMARY KEY, bytes INTEGER NOT NULL, service TEXT NOT NULL, service_yaml TEXT NOT NULL, added TEXT NOT NULL);
                INSERT INTO packages VALUES('abc', 10, 'hello', 'name: hello', '2026-11-01T00:00:00.0000000+00:00');
                CREATE TABLE services(name TEXT PRIMARY KEY, tenant TEXT NOT NULL, revision INTEGER NOT NULL, package_sha256 TEXT NOT NULL,
                    configuration TEXT NOT NULL, deleting INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL, vip TEXT, version INTEGER NOT NULL DEFAULT 1,
                    last_revision INTEGER NOT NULL DEFAULT 0, walk TEXT, family TEXT, slot TEXT NOT NULL DEFAULT 'production');
                INSERT INTO services VALUES('hello', 'contoso', 2, 'abc', 'service: hello', 0, '2026-11-01T00:00:00.0000000+00:00', '127.77.0.1', 5, 3, NULL, 'hello', 'production');
                CREATE TABLE revisions(service TEXT NOT NULL, number INTEGER NOT NULL, package_sha256 TEXT NOT NULL, configuration TEXT NOT NULL,
                    created TEXT NOT NULL, changes TEXT NOT NULL, outcome TEXT NOT NULL, PRIMARY KEY(service, number));
                INSERT INTO revisions VALUES('hello', 2, 'abc', 'service: hello', '2026-11-01T00:00:00.0000000+00:00', 'first', 'Completed'),
                    ('hello', 3, 'abc', 'service: hello', '2026-11-02T00:00:00.0000000+00:00', 'second', 'RolledBack: failed');
                CREATE TABLE instances(service TEXT NOT NULL, role TEXT NOT NULL, idx INTEGER NOT NULL, upgrade_domain INTEGER NOT NULL,
                    node TEXT NOT NULL, cpus TEXT NOT NULL, memory_mib INTEGER NOT NULL, generation INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT,
                    ports TEXT NOT NULL DEFAULT '{}', restarts INTEGER NOT NULL DEFAULT 0, pid INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL,
                    revision INTEGER NOT NULL DEFAULT 0, running_revision INTEGER NOT NULL DEFAULT 0, draining INTEGER NOT NULL DEFAULT 0,
                    ready_since TEXT, last_failure TEXT, last_stderr TEXT, PRIMARY KEY(service, role, idx));
                INSERT INTO instances VALUES('hello', 'web', 0, 0, 'n1', '0,1', 64, 41, 'Ready', NULL, '{"http":20001}', 2, 1234,
                    '2026-11-01T00:00:00.0000000+00:00', 2, 2, 0, '2026-11-01T00:00:00.0000000+00:00', 'exited with code 1', 'boom');
                CREATE TABLE nodes(name TEXT PRIMARY KEY, address TEXT NOT NULL, fault_domain TEXT NOT NULL, labels TEXT NOT NULL,
                    memory_mib INTEGER NOT NULL, cores TEXT NOT NULL, log_url TEXT, condition TEXT NOT NULL, last_seen TEXT NOT NULL, isolation TEXT,
                    drivers TEXT NOT NULL DEFAULT '["process"]');
                INSERT INTO nodes VALUES('n1', '127.0.1.1', 'fd0', '{"zone":"a"}', 1024, '[[0],[1]]', NULL, 'Ready', '2026-11-01T00:00:00.0000000+00:00', 'uid', '["process","container"]');
                CREATE TABLE images(name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, files INTEGER NOT NULL, added TEXT NOT NULL, tenant TEXT);
                INSERT INTO images VALUES('debian', 'def', 100, 3, '2026-11-01T00:00:00.0000000+00:00', NULL);
                CREATE TABLE tokens(hash TEXT PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, tenant TEXT, created TEXT NOT NULL, expires TEXT,
                    uses_left INTEGER, revoked INTEGER NOT NULL DEFAULT 0, description TEXT);
                INSERT INTO tokens VALUES('h1', 'tok1', 'tenant', 'contoso', '2026-11-01T00:00:00.0000000+00:00', NULL, 3, 0, 'ci');
                CREATE TABLE certificates(serial TEXT PRIMARY KEY, node TEXT NOT NULL, not_after TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
                INSERT INTO certificates VALUES('s1', 'n1', '2027-01-01T00:00:00.0000000+00:00', 1);
                CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, message TEXT NOT NULL);
                INSERT INTO events(time, kind, subject, message) VALUES('2026-11-01T00:00:00.0000000+00:00', 'Deployed', 'hello', 'one'),
                    ('2026-11-01T00:00:01.0000000+00:00', 'Ready', 'hello/web/0', 'two');
                """);

        var opened = await ClusterStores.OpenSqliteAsync(path, _time);
        using (var store = opened.Cluster)
        {
            var service = store.GetService("hello")!;
            Assert.Equal(("contoso", 2L, 3L, 5L, "127.77.0.1"), (service.Tenant, service.Revision, service.LastRevision, service.Version, service.Vip));
            Assert.Equal([(3L, "RolledBack: failed"), (2L, "Completed")], store.ListRevisions("hello").Select(r => (r.Number, r.Outcome.ToString())));
            var instance = Assert.Single(store.ListInstances("hello"));
            Assert.Equal((41L, InstanceState.Ready, 20001, 1234, "boom", 2L), (instance.Generation, instance.State, instance.Ports["http"], instance.Pid, instance.LastStderr, instance.RunningRevision));
            Assert.Equal([0, 1], instance.Cpus);
            Assert.Equal(["process", "container"], store.GetNode("n1")!.Drivers);
            Assert.Equal("name: hello", store.GetPackage("abc")!.ServiceYaml);
            Assert.Equal("def", store.GetImage(null, "debian")!.Sha256);
            Assert.Equal((3, "contoso"), (opened.Trust.GetTokenByHash("h1")!.UsesLeft, opened.Trust.GetTokenByHash("h1")!.Tenant));
            Assert.True(opened.Trust.GetCertificate("s1")!.Revoked);
            Assert.Equal(["one", "two"], store.ListEvents(0, 10).Select(e => e.Message));
            Assert.True(await store.NextGenerationAsync() > 41, "generations keep growing past those handed out before");

            // The VIP stays taken: another service cannot be given it.
            Assert.Equal("hello", store.ListVips()["127.77.0.1"]);
            Assert.False(await store.PutDeploymentAsync(new DeploymentWrite("other", "contoso", 1, "abc", "service: other", "first", 0) { Vip = "127.77.0.1" }));
            Assert.True(await store.CommitPlacementAsync(new PlacementCommit("hello", 5, [], [("web", 0)])));
        }

        using (var db = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            db.Open();
            using var tables = db.CreateCommand();
            tables.CommandText = "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name)";
            Assert.Equal("kv,kv_log,kv_meta", tables.ExecuteScalar());
        }

        // Opened again: nothing imported twice, and what changed since is kept.
        using var reopened = (await ClusterStores.OpenSqliteAsync(path, _time)).Cluster;
        Assert.Empty(reopened.ListInstances("hello"));
        Assert.Equal(2, reopened.ListEvents(0, 10).Count);
    }
}
