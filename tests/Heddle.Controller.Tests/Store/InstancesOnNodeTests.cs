using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;
using Heddle.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Store;

/// <summary>
/// A node's instances (what its goal state is made from) after placements are made, moved and removed, by this
/// controller and by another sharing the store, and after more changes than the store keeps a record of: always what
/// grouping every placement afresh would give.
/// </summary>
public sealed class InstancesOnNodeTests : IDisposable
{
    private static readonly string[] Nodes = ["n1", "n2", "n3", "n4", "n5"];
    private static readonly string[] Services = ["a", "b", "c"];
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));
    private readonly InMemoryKeyValueStore _kv = new();
    private readonly KvClusterStore _here;
    private readonly KvClusterStore _elsewhere;

    public InstancesOnNodeTests()
    {
        _here = KvStores.Over(_kv, _time);
        _elsewhere = KvStores.Over(_kv, _time);
    }

    public void Dispose()
    {
        _here.Dispose();
        _elsewhere.Dispose();
        _kv.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Fact]
    public async Task EachNodesInstances_AreTheGroupingOfEveryPlacement_ThroughMovesRemovalsAndAnotherControllersWrites()
    {
        foreach (var service in Services)
        {
            Assert.True(await _here.PutDeploymentAsync(new DeploymentWrite(service, "default", 1, new string('a', 64), $"service: {service}", "test", 0)));
        }

        var random = new Random(7);
        for (var round = 0; round < 150; round++)
        {
            // Some rounds are written by the other controller: this one takes them in through the store's watch.
            var writer = round % 3 == 2 ? _elsewhere : _here;
            var service = Services[random.Next(Services.Length)];
            await Until(writer, service, _here.GetService(service)!.Version);
            var upserts = Enumerable.Range(0, random.Next(0, 4)).Select(_ => Instance(service, random.Next(6), Nodes[random.Next(Nodes.Length)], round + 1)).DistinctBy(i => i.Index).ToList();
            var removals = writer.ListInstances(service).Where(i => random.Next(4) == 0 && upserts.All(u => u.Index != i.Index)).Select(i => (i.Role, i.Index)).ToList();
            Assert.True(await writer.CommitPlacementAsync(new PlacementCommit(service, writer.GetService(service)!.Version, upserts, removals)));
            await Until(_here, service, writer.GetService(service)!.Version);

            if (round % 10 == 0)
            {
                AssertGrouped(); // asked between rounds too, so the grouping is caught up by what changed, not made afresh each time
            }
        }

        AssertGrouped();

        // More changes than the store keeps a record of pass (heartbeats, events): the next listing is still right.
        var moved = Instance("a", 0, "n5", 1000);
        for (var written = 0; written <= KvMirror.ChangesKept; written += 10_000)
        {
            await _kv.CommitAsync([], [.. Enumerable.Range(written, 10_000).Select(i => KvWrite.Put($"other/{i}", "{}"u8.ToArray()))]);
        }

        Assert.True(await _elsewhere.CommitPlacementAsync(new PlacementCommit("a", _elsewhere.GetService("a")!.Version, [moved], [])));
        await Until(_here, "a", _elsewhere.GetService("a")!.Version);
        AssertGrouped();
        Assert.Contains(_here.ListInstancesOnNode("n5"), i => i.Id == moved.Id && i.Generation == 1000);
    }

    private void AssertGrouped()
    {
        var all = Services.SelectMany(s => _here.ListInstances(s)).ToList();
        foreach (var node in Nodes)
        {
            var expected = all.Where(i => i.Node == node).Select(i => $"{i.Id}@{i.Generation}").ToList();
            Assert.Equal(expected, _here.ListInstancesOnNode(node).Select(i => $"{i.Id}@{i.Generation}"));
        }
    }

    /// <summary>Waits until <paramref name="store"/> has taken in the service at <paramref name="version"/> or later (another controller's write comes by the watch).</summary>
    private static Task Until(KvClusterStore store, string service, long version = 0) => store.GetService(service) is { } now && now.Version >= version
        ? Task.CompletedTask
        : Poll.UntilAsync(() => Task.FromResult(store.GetService(service)), s => s is not null && s.Version >= version, TimeSpan.FromSeconds(10), $"{service} at version {version} taken in",
            TimeSpan.FromMilliseconds(2));

    private static InstanceRecord Instance(string service, int index, string node, long generation) => new()
    {
        Service = service, Role = "web", Index = index, UpgradeDomain = 0, Node = node, Cpus = [index], MemoryMiB = 64, Generation = generation, Revision = 1,
    };
}
