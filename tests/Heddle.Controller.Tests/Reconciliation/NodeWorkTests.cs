using Heddle.Controller.Agents;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Reconciliation;

/// <summary>
/// What a node's change queues: the services with an instance on the node and those with instances waiting for room,
/// not every service of the cluster (each pass weighs the whole cluster; a thousand nodes saying Hello queued every
/// service a thousand times).
/// </summary>
public sealed class NodeWorkTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero));
    private readonly IClusterStore _store;
    private readonly WorkQueue _queue = new();
    private readonly DeploymentReconciler _reconciler;
    private readonly NodeWork _work;

    public NodeWorkTests()
    {
        _store = KvStores.InMemory(_time);
        var models = new ServiceModels(_store);
        _reconciler = new DeploymentReconciler(_store, models, new EventLog(_store),
            new ControllerOptions { StateDirectory = "/nonexistent" }, new AlwaysPublished(), _time, NullLogger<DeploymentReconciler>.Instance);
        _work = new NodeWork(_store, _queue, _reconciler);
    }

    public void Dispose() => _store.Dispose();

    [Fact]
    public async Task ANodeThatJoins_QueuesTheServicesWaitingForRoom_NotTheOthers()
    {
        await NodeAsync("n1", cores: 3);
        await DeployAsync("placed", instances: 1);
        await DeployAsync("other", instances: 1);
        await DeployAsync("waiting", instances: 4); // 1 of 4 fits beside the others
        foreach (var service in new[] { "placed", "other", "waiting" })
        {
            await _reconciler.ReconcileAsync(service);
        }

        Assert.Single(_store.ListInstances("waiting"));
        Assert.NotEmpty(_reconciler.Unplaced("waiting"));

        await NodeAsync("n2", cores: 4);
        _work.Changed("n2");

        Assert.Equal(["waiting"], await QueuedAsync());
    }

    [Fact]
    public async Task ANodeThatChanges_QueuesTheServicesWithAnInstanceOnIt()
    {
        await NodeAsync("n1", cores: 2);
        await NodeAsync("n2", cores: 2);
        await DeployAsync("a", instances: 2); // one on each node (fault domains)
        await DeployAsync("b", instances: 1);
        await DeployAsync("c", instances: 1);
        foreach (var service in new[] { "a", "b", "c" })
        {
            await _reconciler.ReconcileAsync(service);
        }

        var onN1 = _store.ListInstancesOnNode("n1").Select(i => i.Service).Distinct().Order(StringComparer.Ordinal).ToList();
        _work.Changed("n1");

        Assert.Contains("a", onN1);
        Assert.Equal(onN1, (await QueuedAsync()).Order(StringComparer.Ordinal));
    }

    /// <summary>What is queued, in order: a marker is added last and everything before it taken.</summary>
    private async Task<List<string>> QueuedAsync()
    {
        const string end = "~end";
        _queue.Add(end);
        var queued = new List<string>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        for (var key = await _queue.TakeAsync(deadline.Token); key != end; key = await _queue.TakeAsync(deadline.Token))
        {
            queued.Add(key);
        }

        return queued;
    }

    private Task NodeAsync(string name, int cores) => _store.PutNodeAsync(new NodeRecord
    {
        Name = name, Address = $"127.0.9.{name[1..]}", FaultDomain = $"fd-{name}", Labels = new Dictionary<string, string>(), MemoryMiB = 8192,
        Cores = [.. Enumerable.Range(0, cores).Select(c => (IReadOnlyList<int>)[c])], Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow(),
    });

    private async Task DeployAsync(string name, int instances)
    {
        var package = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name)));
        var yaml = $"name: {name}\nroles:\n  web:\n    entryPoint: {{ command: web }}\n    size: {{ cores: 1, memoryMiB: 64 }}\n";
        await _store.PutPackageAsync(new PackageRecord(package, 1, name, yaml, _time.GetUtcNow()));
        Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite(name, "default", 1, package, $"service: {name}\nroles:\n  web: {{ instances: {instances} }}\n", "test", 0)));
    }
}
