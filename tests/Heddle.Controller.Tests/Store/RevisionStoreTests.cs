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

    private SqliteClusterStore Open() => new(_directory.Combine("cluster.db"), _time);

    private static DeploymentWrite Write(long number, long expectedVersion, int limit = 10) =>
        new("hello", "default", number, new string('a', 64), $"service: hello # {number}", $"change {number}", expectedVersion) { HistoryLimit = limit };

    private static InstanceRecord Instance(long revision) => new()
    {
        Service = "hello", Role = "web", Index = 0, UpgradeDomain = 0, Node = "n1", Cpus = [0], MemoryMiB = 64, Generation = 1, Revision = revision,
    };

    [Fact]
    public void PutDeployment_BeyondTheLimit_ForgetsTheOldest_ButKeepsWhatAnInstanceRuns()
    {
        using var store = Open();
        Assert.True(store.PutDeployment(Write(1, 0)));
        Assert.True(store.CommitPlacement(new PlacementCommit("hello", store.GetService("hello")!.Version, [Instance(1)], [])));
        for (var n = 2; n <= 12; n++)
        {
            Assert.True(store.PutDeployment(Write(n, store.GetService("hello")!.Version, limit: 5)));
        }

        Assert.Equal([12L, 11, 10, 9, 8, 1], store.ListRevisions("hello").Select(r => r.Number));
        Assert.Equal("Superseded", store.GetRevision("hello", 11)!.Outcome);
        Assert.Equal("InProgress", store.GetRevision("hello", 12)!.Outcome);
        Assert.Equal((12L, 12L), (store.GetService("hello")!.Revision, store.GetService("hello")!.LastRevision));
    }

    [Fact]
    public void PutDeployment_FromAStaleRead_ChangesNothing()
    {
        using var store = Open();
        Assert.True(store.PutDeployment(Write(1, 0)));
        var read = store.GetService("hello")!;
        Assert.True(store.PutDeployment(Write(2, read.Version)));

        Assert.False(store.PutDeployment(Write(2, read.Version)));
        Assert.False(store.PutDeployment(Write(1, 0)));
        Assert.Equal([2L, 1L], store.ListRevisions("hello").Select(r => r.Number));
    }

    [Fact]
    public void CommitPlacement_WithAWalk_SurvivesAReopen()
    {
        var walk = new UpgradeWalk
        {
            Revision = 2, Previous = 1, Policy = Model.Configuration.UpgradePolicy.Default with { Mode = Model.Configuration.UpgradeMode.Manual },
            Order = [0, 1, 2], Position = 1, Phase = WalkPhase.Updating, Started = _time.GetUtcNow(), PhaseStarted = _time.GetUtcNow(),
        };
        using (var store = Open())
        {
            Assert.True(store.PutDeployment(Write(1, 0)));
            Assert.True(store.PutDeployment(Write(2, store.GetService("hello")!.Version) with { Walk = walk }));
        }

        using var reopened = Open();
        Assert.Equal(walk, reopened.GetService("hello")!.Walk! with { Order = walk.Order });
        Assert.Equal([0, 1, 2], reopened.GetService("hello")!.Walk!.Order);
        Assert.True(reopened.GetService("hello")!.UpgradeInProgress);
    }

    [Fact]
    public void Open_AStoreFromBeforeRevisions_GivesEachServiceItsRevisionAndLabelsItsInstances()
    {
        var path = _directory.Combine("cluster.db");
        using (var db = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            db.Open();
            using var create = db.CreateCommand();
            create.CommandText = """
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
                """;
            create.ExecuteNonQuery();
        }

        using var store = Open();

        var revision = Assert.Single(store.ListRevisions("hello"));
        Assert.Equal((4L, "abc", "Completed"), (revision.Number, revision.PackageSha256, revision.Outcome));
        Assert.Equal(4, Assert.Single(store.ListInstances("hello")).Revision);
        Assert.Equal(4, store.GetService("hello")!.LastRevision);
    }
}
