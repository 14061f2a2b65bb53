using Heddle.Controller.Agents;
using Heddle.Controller.Publishing;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Reconciliation;

/// <summary>
/// The allocator's view of the cluster is kept between passes (<see cref="PlacementCache"/>), not built from every node
/// and instance for each: what users would notice if it went stale is a node given more cores than it has, room freed
/// by a deleted service never used again, or another controller's placements ignored. Three nodes of 4 cores.
/// </summary>
public sealed class PlacementCacheTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero));
    private readonly KvClusterStore _store;
    private readonly DeploymentReconciler _reconciler;
    private long _package;

    public PlacementCacheTests()
    {
        _store = KvStores.InMemory(_time);
        var models = new ServiceModels(_store);
        _reconciler = new DeploymentReconciler(_store, models, new EventLog(_store),
            new ControllerOptions { StateDirectory = "/nonexistent", ResyncInterval = TimeSpan.FromMinutes(10) }, new AlwaysPublished(), _time,
            NullLogger<DeploymentReconciler>.Instance);
        for (var i = 1; i <= 3; i++)
        {
            _store.PutNodeAsync(Node($"n{i}", NodeCondition.Ready)).GetAwaiter().GetResult();
        }
    }

    public void Dispose() => _store.Dispose();

    private NodeRecord Node(string name, NodeCondition condition) => new()
    {
        Name = name, Address = $"127.0.9.{name[1..]}", FaultDomain = $"fd{name[1..]}", Labels = new Dictionary<string, string>(), MemoryMiB = 4096,
        Cores = [[0], [1], [2], [3]], Condition = condition, LastSeen = _time.GetUtcNow(), Drivers = ["process"],
    };

    private async Task DeployAsync(string name, int instances, string tenant = "default")
    {
        var yaml = $"name: {name}\nupgradeDomains: 3\nroles:\n  web:\n    entryPoint: {{ command: web }}\n    size: {{ cores: 1, memoryMiB: 64 }}\n";
        var package = (++_package).ToString("x64", System.Globalization.CultureInfo.InvariantCulture);
        await _store.PutPackageAsync(new PackageRecord(package, 1, name, yaml, _time.GetUtcNow()));
        var version = _store.GetService(name)?.Version ?? 0;
        var revision = (_store.GetService(name)?.Revision ?? 0) + 1;
        Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite(name, tenant, revision, package, $"service: {name}\nroles:\n  web: {{ instances: {instances} }}\n", "test", version)));
        await ReconcileAsync(name);
    }

    /// <summary>Passes until the service has nothing more to do now (a drained instance is removed in the pass after).</summary>
    private async Task ReconcileAsync(string name)
    {
        for (var i = 0; i < 5; i++)
        {
            if ((await _reconciler.ReconcileAsync(name)).RequeueAfter is null)
            {
                return;
            }
        }
    }

    private Dictionary<string, int> CoresUsed() =>
        _store.ListInstances().GroupBy(i => i.Node).ToDictionary(g => g.Key, g => g.Sum(i => i.Cpus.Count), StringComparer.Ordinal);

    [Fact]
    public async Task PassesOfManyServices_FillTheNodesExactly_WithoutBuildingTheViewAgain()
    {
        foreach (var name in new[] { "s1", "s2", "s3", "s4" })
        {
            await DeployAsync(name, 3, tenant: name == "s4" ? "other" : "default");
        }

        Assert.Equal(12, _store.ListInstances().Count);
        Assert.All(CoresUsed().Values, used => Assert.Equal(4, used)); // never more than a node has
        await DeployAsync("s5", 1);
        Assert.Empty(_store.ListInstances("s5"));
        Assert.Contains(_reconciler.Unplaced("s5"), why => why.Contains("free", StringComparison.Ordinal));
        Assert.Equal(1, _reconciler.ClusterBuilds);
    }

    [Fact]
    public async Task RoomFreedByADeletedOrScaledDownService_IsUsedByTheNextPass()
    {
        foreach (var name in new[] { "s1", "s2", "s3", "s4" })
        {
            await DeployAsync(name, 3);
        }

        await DeployAsync("s5", 2);
        Assert.Empty(_store.ListInstances("s5"));

        Assert.True(await _store.MarkDeletingAsync("s1"));
        await ReconcileAsync("s1");
        Assert.Empty(_store.ListInstances("s1"));
        await DeployAsync("s2", 2); // scaled down by one: drained, then removed
        Assert.Equal(2, _store.ListInstances("s2").Count);

        await ReconcileAsync("s5");
        Assert.Equal(2, _store.ListInstances("s5").Count);
        await DeployAsync("s6", 2);
        Assert.Equal(2, _store.ListInstances("s6").Count);
        Assert.All(CoresUsed().Values, used => Assert.True(used <= 4));
        Assert.Equal(12, CoresUsed().Values.Sum());
        Assert.Equal(1, _reconciler.ClusterBuilds);
    }

    [Fact]
    public async Task PlacementsWrittenByAnotherController_AreCountedBeforeTheNextPass()
    {
        await DeployAsync("s1", 3); // one on each node (spread over the fault domains)

        // Another controller sharing the store (a former leader) placed a service filling the rest of every node.
        var yaml = "name: big\nupgradeDomains: 3\nroles:\n  web:\n    entryPoint: { command: web }\n    size: { cores: 3, memoryMiB: 64 }\n";
        await _store.PutPackageAsync(new PackageRecord(new string('b', 64), 1, "big", yaml, _time.GetUtcNow()));
        Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite("big", "default", 1, new string('b', 64), "service: big\nroles:\n  web: { instances: 3 }\n", "test", 0)));
        var other = new DeploymentReconciler(_store, new ServiceModels(_store), new EventLog(_store),
            new ControllerOptions { StateDirectory = "/nonexistent" }, new AlwaysPublished(), _time, NullLogger<DeploymentReconciler>.Instance);
        await other.ReconcileAsync("big");
        Assert.Equal(3, _store.ListInstances("big").Count);

        await DeployAsync("s2", 1);
        Assert.Empty(_store.ListInstances("s2"));
        Assert.All(CoresUsed().Values, used => Assert.Equal(4, used));
    }

    [Fact]
    public async Task ANodeWrittenAgainUnchanged_BuildsNothing_ButMoreCoresOnIt_AreUsed()
    {
        await DeployAsync("s1", 3);
        Assert.Equal(1, _reconciler.ClusterBuilds);

        _time.Advance(TimeSpan.FromSeconds(5));
        await _store.PutNodeAsync(Node("n1", NodeCondition.Ready) with { LastSeen = _time.GetUtcNow() }); // its agent said Hello again
        await DeployAsync("s2", 3);
        Assert.Equal(1, _reconciler.ClusterBuilds);

        await _store.PutNodeAsync(Node("n1", NodeCondition.Ready) with { Cores = [[0], [1], [2], [3], [4], [5]] });
        await DeployAsync("s3", 8); // only with n1's two new cores do all 8 fit
        Assert.Equal(2, _reconciler.ClusterBuilds);
        Assert.Equal(8, _store.ListInstances("s3").Count);
        Assert.Equal(6, CoresUsed()["n1"]);
        Assert.Equal(4, CoresUsed()["n2"]);
    }

    [Fact]
    public async Task ANodeGoingDown_BuildsTheViewAgain_AndItsInstancesMove()
    {
        await DeployAsync("s1", 3);
        await DeployAsync("s2", 3);
        Assert.Equal(1, _reconciler.ClusterBuilds);

        var down = _store.ListInstances("s1")[0].Node;
        await _store.PutNodeAsync(Node(down, NodeCondition.Down));
        await ReconcileAsync("s1");
        await ReconcileAsync("s2");

        Assert.Equal(2, _reconciler.ClusterBuilds);
        Assert.DoesNotContain(_store.ListInstances(), i => i.Node == down);
        Assert.Equal(6, _store.ListInstances().Count);
        Assert.All(CoresUsed().Values, used => Assert.True(used <= 4));
    }
}
