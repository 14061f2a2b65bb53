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
/// Passes of different services run at once (<see cref="ReconcileLoop"/>): they plan in turns and their commits
/// overlap. What a user would notice if a pass planned on a view without the placements of one still committing: two
/// instances given the same cores of a node; or, if a failed commit's plan stayed in the view, cores that no one uses
/// and no one can have. Three nodes of 4 cores, single-core instances.
/// </summary>
public sealed class ConcurrentPassesTests : IAsyncDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero));
    private readonly HeldCommits _kv = new();
    private readonly KvClusterStore _store;
    private readonly DeploymentReconciler _reconciler;

    public ConcurrentPassesTests()
    {
        _store = KvStores.Over(_kv, _time);
        _reconciler = new DeploymentReconciler(_store, new ServiceModels(_store), new EventLog(_store),
            new ControllerOptions { StateDirectory = "/nonexistent", ResyncInterval = TimeSpan.FromMinutes(10) }, new AlwaysPublished(), _time,
            NullLogger<DeploymentReconciler>.Instance);
        for (var i = 1; i <= 3; i++)
        {
            _store.PutNodeAsync(new NodeRecord
            {
                Name = $"n{i}", Address = $"127.0.9.{i}", FaultDomain = $"fd{i}", Labels = new Dictionary<string, string>(), MemoryMiB = 4096,
                Cores = [[0], [1], [2], [3]], Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow(), Drivers = ["process"],
            }).GetAwaiter().GetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _store.Dispose();
        await _kv.DisposeAsync();
    }

    [Fact]
    public async Task APassPlanningWhileAnotherCommits_TakesOtherCores_AndWhenThatCommitFails_ItsCoresAreFreeAgain()
    {
        await DeployAsync("a", 4, package: "aa");
        await DeployAsync("b", 4, package: "bb");

        _kv.Hold("instances/a/");
        var a = _reconciler.ReconcileAsync("a");
        await Poll.UntilAsync(() => _kv.Waiting, TimeSpan.FromSeconds(10), "a's commit to reach the store");
        Assert.False(a.IsCompleted);

        // b plans while a's commit is on its way: the cores a took are not b's to take.
        await _reconciler.ReconcileAsync("b").WaitAsync(TimeSpan.FromSeconds(10));
        _kv.Release();
        await a.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(8, _store.ListInstances().Count);
        AssertNoCoreGivenTwice();

        // A commit that fails (here: the service changed under it) gives back what its pass had planned.
        await DeployAsync("c", 3, package: "cc");
        _kv.Hold("instances/c/");
        var c = _reconciler.ReconcileAsync("c");
        await Poll.UntilAsync(() => _kv.Waiting, TimeSpan.FromSeconds(10), "c's commit to reach the store");
        _kv.Fail();
        Assert.True((await c.WaitAsync(TimeSpan.FromSeconds(10))).Conflict, "a failed commit is retried");
        Assert.Empty(_store.ListInstances("c"));

        // The 4 cores left are all d's to take.
        await DeployAsync("d", 4, package: "dd");
        await _reconciler.ReconcileAsync("d");
        Assert.Equal(4, _store.ListInstances("d").Count);
        AssertNoCoreGivenTwice();
    }

    private void AssertNoCoreGivenTwice()
    {
        var shared = _store.ListInstances().SelectMany(i => i.Cpus.Select(c => (i.Node, Cpu: c, i.Id))).GroupBy(x => (x.Node, x.Cpu)).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key.Node} cpu {g.Key.Cpu}: {string.Join(", ", g.Select(x => x.Id))}").ToList();
        Assert.True(shared.Count == 0, "cores given twice: " + string.Join("; ", shared));
    }

    private async Task DeployAsync(string name, int instances, string package)
    {
        var yaml = $"name: {name}\nupgradeDomains: 3\nroles:\n  web:\n    entryPoint: {{ command: web }}\n    size: {{ cores: 1, memoryMiB: 64 }}\n";
        await _store.PutPackageAsync(new PackageRecord(package, 1, name, yaml, _time.GetUtcNow()));
        Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite(name, "default", 1, package, $"service: {name}\nroles:\n  web: {{ instances: {instances} }}\n", "test", 0)));
    }

    /// <summary>An in-memory store that can hold back the commit that writes under a prefix, then let it through or fail it.</summary>
    private sealed class HeldCommits : IKeyValueStore
    {
        private readonly InMemoryKeyValueStore _inner = new();
        private string? _prefix;
        private TaskCompletionSource<bool>? _gate;

        public bool Waiting { get; private set; }

        public void Hold(string prefix)
        {
            _prefix = prefix;
            _gate = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public void Release() => _gate!.TrySetResult(true);

        public void Fail() => _gate!.TrySetResult(false);

        public Task<KvEntry?> GetAsync(string key, CancellationToken cancellationToken = default) => _inner.GetAsync(key, cancellationToken);

        public Task<KvRange> ListAsync(string prefix, CancellationToken cancellationToken = default) => _inner.ListAsync(prefix, cancellationToken);

        public async Task<KvCommit> CommitAsync(IReadOnlyList<KvCondition> conditions, IReadOnlyList<KvWrite> writes, CancellationToken cancellationToken = default) =>
            (await CommitEachAsync([new KvBatchItem(conditions, writes)], cancellationToken))[0];

        public async Task<IReadOnlyList<KvCommit>> CommitEachAsync(IReadOnlyList<KvBatchItem> commits, CancellationToken cancellationToken = default)
        {
            if (_prefix is { } prefix && commits.Any(c => c.Writes.Any(w => w.Key.StartsWith(prefix, StringComparison.Ordinal))))
            {
                _prefix = null;
                Waiting = true;
                var through = await _gate!.Task;
                Waiting = false;
                if (!through)
                {
                    // As a condition that no longer holds: the first commit fails, those after it (its events) are not made.
                    return [.. commits.Select(_ => new KvCommit(false, 0))];
                }
            }

            return await _inner.CommitEachAsync(commits, cancellationToken);
        }

        public IAsyncEnumerable<KvEvent> WatchAsync(string prefix, long fromRevision, CancellationToken cancellationToken = default) =>
            _inner.WatchAsync(prefix, fromRevision, cancellationToken);

        public ValueTask DisposeAsync() => _inner.DisposeAsync();
    }
}
