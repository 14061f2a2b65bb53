using Heddle.Contracts.Api;
using Heddle.Controller.Agents;
using Heddle.Controller.Publishing;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;
using Heddle.Model.Configuration;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Upgrades;

/// <summary>
/// The deployment reconciler walking an upgrade against a real SQLite store and a fake clock, with the agents played by
/// the test (each instance reports Ready at the revision it was given). A 10 s gate costs no real time, and a new
/// reconciler on the same store (a controller restarted after kill -9) carries on where the last one stopped.
/// </summary>
public abstract class UpgradeReconcileTests : IDisposable
{
    private const string ServiceYaml = """
        name: hello
        upgradeDomains: 3
        roles:
          web:
            entryPoint: { command: web }
            size: { cores: 1, memoryMiB: 64 }
            settings: [Greeting]
          worker:
            entryPoint: { command: worker }
            size: { cores: 1, memoryMiB: 64 }
        """;

    private static readonly string Package = new('c', 64);

    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero));
    private readonly IClusterStore _store;
    private readonly List<string> _events = [];

    protected UpgradeReconcileTests(Func<TempDirectory, TimeProvider, IClusterStore> open)
    {
        _store = open(_directory, _time);
        _store.Changed += c =>
        {
            if (c.Event is { } e)
            {
                lock (_events)
                {
                    _events.Add($"{e.Kind} {e.Message}");
                }
            }
        };
        _store.PutPackageAsync(new PackageRecord(Package, 1, "hello", ServiceYaml, _time.GetUtcNow())).GetAwaiter().GetResult();
        for (var i = 1; i <= 3; i++)
        {
            _store.PutNodeAsync(new NodeRecord
            {
                Name = $"n{i}", Address = $"127.0.9.{i}", FaultDomain = $"fd{i}", Labels = new Dictionary<string, string>(), MemoryMiB = 4096,
                Cores = [[0], [1], [2], [3]], Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow(),
            }).GetAwaiter().GetResult();
        }
    }

    public void Dispose()
    {
        _store.Dispose();
        _directory.Dispose();
    }

    private static string Configuration(string greeting) =>
        $"service: hello\nroles:\n  web: {{ instances: 3, settings: {{ Greeting: \"{greeting}\" }} }}\n  worker: {{ instances: 1 }}\n";

    private DeploymentReconciler NewController()
    {
        var models = new ServiceModels(_store);
        var events = new EventLog(_store);
        return new DeploymentReconciler(_store, models, events,
            new ControllerOptions { StateDirectory = _directory.Path }, new AlwaysPublished(), _time, NullLogger<DeploymentReconciler>.Instance);
    }

    /// <summary>The agents: every instance not yet Ready at its revision becomes so now.</summary>
    private async Task AgentsReport()
    {
        foreach (var i in _store.ListInstances("hello").Where(i => i.State != InstanceState.Ready || i.RunningRevision != i.Revision))
        {
            Assert.True(await _store.UpdateInstanceStatusAsync(new InstanceReportRecord(i.Node, i.Service, i.Role, i.Index, i.Generation, InstanceState.Ready, null) { Revision = i.Revision }));
        }
    }

    /// <summary>
    /// Reconciles, with the agents reporting after each pass (as their reports queue the service), until a pass changes
    /// nothing and asks for no quick look again; returns the delay it asks for last.
    /// </summary>
    private async Task<TimeSpan?> Settle(DeploymentReconciler controller)
    {
        for (var pass = 0; pass < 50; pass++)
        {
            var version = _store.GetService("hello")!.Version;
            var result = await controller.ReconcileAsync("hello");
            Assert.False(result.Conflict);
            await AgentsReport();
            var quick = result.RequeueAfter is { } after && after <= UpgradeWalker.PublishPoll;
            if (!quick && _store.GetService("hello")!.Version == version)
            {
                return result.RequeueAfter;
            }
        }

        throw new InvalidOperationException("the reconciler kept asking to look again at once");
    }

    private async Task Deploy(long number, string greeting, bool walk)
    {
        var service = _store.GetService("hello");
        var write = new DeploymentWrite("hello", "default", number, Package, Configuration(greeting), "test", service?.Version ?? 0)
        {
            Walk = walk
                ? new UpgradeWalk { Revision = number, Previous = service!.Revision, Policy = UpgradePolicy.Default, Order = [0, 1, 2], Started = _time.GetUtcNow(), PhaseStarted = _time.GetUtcNow() }
                : null,
        };
        Assert.True(await _store.PutDeploymentAsync(write));
    }

    private Dictionary<string, long> Generations() => _store.ListInstances("hello").ToDictionary(i => i.Id, i => i.Generation);

    [Fact]
    public async Task Walk_RestartsOneDomainPerGate_AndANewControllerCarriesOn()
    {
        await Deploy(1, "hi", walk: false);
        var controller = NewController();
        await Settle(controller);
        var first = Generations();
        Assert.Equal(4, first.Count);
        Assert.Equal("Completed", _store.GetRevision("hello", 1)!.Outcome.ToString());

        await Deploy(2, "hey", walk: true);
        var gate = await Settle(controller);
        var afterDomain0 = Generations();

        Assert.Equal(TimeSpan.FromSeconds(10), gate);
        Assert.NotEqual(first["hello/web/0"], afterDomain0["hello/web/0"]);
        Assert.Equal(first["hello/worker/0"], afterDomain0["hello/worker/0"]); // its settings did not change: relabelled, not restarted
        Assert.Equal(first["hello/web/1"], afterDomain0["hello/web/1"]);
        Assert.Equal(first["hello/web/2"], afterDomain0["hello/web/2"]);

        _time.Advance(TimeSpan.FromSeconds(9));
        await Settle(controller);
        Assert.Equal(first["hello/web/1"], Generations()["hello/web/1"]); // not stable for 10 s yet

        _time.Advance(TimeSpan.FromSeconds(1));
        await Settle(controller);
        var afterDomain1 = Generations();
        Assert.NotEqual(first["hello/web/1"], afterDomain1["hello/web/1"]);
        Assert.Equal(first["hello/web/2"], afterDomain1["hello/web/2"]);

        var restarted = NewController(); // the controller was killed: a new one reads the walk from the store
        _time.Advance(TimeSpan.FromSeconds(10));
        await Settle(restarted);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Null(await Settle(restarted));

        var last = _store.ListInstances("hello");
        Assert.Equal(4, last.Count);
        Assert.All(last, i => Assert.Equal((2L, 2L), (i.Revision, i.RunningRevision)));
        Assert.Equal(afterDomain1["hello/web/0"], Generations()["hello/web/0"]); // nothing restarted twice
        Assert.Equal(WalkPhase.Completed, _store.GetService("hello")!.Walk!.Phase);
        Assert.Equal("Completed", _store.GetRevision("hello", 2)!.Outcome.ToString());
        Assert.Equal(3, _events.Count(e => e.StartsWith("UpgradeDomainHealthy", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Walk_AnInstanceThatKeepsFaulting_RollsBackAndMakesThePreviousRevisionDesired()
    {
        await Deploy(1, "hi", walk: false);
        var controller = NewController();
        await Settle(controller);
        await Deploy(2, "hey", walk: true);
        await controller.ReconcileAsync("hello"); // domain 0 drains
        await controller.ReconcileAsync("hello"); // and restarts
        var web0 = _store.ListInstances("hello").Single(i => i.Id == "hello/web/0");
        Assert.Equal(2, web0.Revision);
        Assert.True(await _store.UpdateInstanceStatusAsync(new InstanceReportRecord(web0.Node, "hello", "web", 0, web0.Generation, InstanceState.Faulted, "exited with code 1; restarting in 4 s (restart 3)")
        {
            Revision = 2, Restarts = 3, Failure = "exited with code 1", LastStderr = "KeyError: 'PORT'",
        }));

        _time.Advance(TimeSpan.FromSeconds(7));
        await controller.ReconcileAsync("hello");
        var service = _store.GetService("hello")!;
        Assert.True(service.Walk!.RollingBack);
        Assert.Equal(1, service.Revision);
        Assert.Equal("RollingBack: upgrade domain 0: hello/web/0 exited with code 1 three times in 7 s (last stderr line: \"KeyError: 'PORT'\")",
            _store.GetRevision("hello", 2)!.Outcome.ToString());

        await Settle(controller);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Null(await Settle(controller));
        Assert.All(_store.ListInstances("hello"), i => Assert.Equal((1L, 1L), (i.Revision, i.RunningRevision)));
        Assert.StartsWith("RolledBack: upgrade domain 0: hello/web/0 exited with code 1 three times", _store.GetRevision("hello", 2)!.Outcome.ToString());
    }

    [Fact]
    public async Task Walk_AnInstanceMovedOffADownNode_StartsAtTheNewRevision_AndItsDomainHasNothingLeftToDo()
    {
        await Deploy(1, "hi", walk: false);
        var controller = NewController();
        await Settle(controller);
        await Deploy(2, "hey", walk: true);
        await Settle(controller); // domain 0 restarted, waiting for its gate
        var web2 = _store.ListInstances("hello").Single(i => i.Id == "hello/web/2");
        Assert.Equal(1, web2.Revision);

        await _store.SetNodeConditionAsync(web2.Node, NodeCondition.Down, _time.GetUtcNow());
        await Settle(controller);
        var moved = _store.ListInstances("hello").Single(i => i.Id == "hello/web/2");

        Assert.NotEqual(web2.Node, moved.Node);
        Assert.Equal((2L, 2L), (moved.Revision, moved.RunningRevision));
        for (var i = 0; i < 4; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(10));
            await Settle(controller);
        }

        Assert.Equal(WalkPhase.Completed, _store.GetService("hello")!.Walk!.Phase);
        Assert.Contains(_events, e => e.StartsWith("UpgradeDomainHealthy", StringComparison.Ordinal) && e.Contains("upgrade domain 2: nothing to change"));
        Assert.Equal(4, _store.ListInstances("hello").Count);
    }

    [Fact]
    public async Task Pause_WhileADomainDrains_PutsItsInstancesBackIntoRotation_AndResumeCarriesOn()
    {
        await Deploy(1, "hi", walk: false);
        var controller = NewController();
        await Settle(controller);
        await Deploy(2, "hey", walk: true);
        await controller.ReconcileAsync("hello"); // domain 0 drains
        Assert.True(_store.ListInstances("hello").Single(i => i.Id == "hello/web/0").Draining);
        var control = new Heddle.Controller.Api.UpgradeControl(_store, _time);

        await control.ActAsync("hello", Heddle.Controller.Api.UpgradeAction.Pause);
        var paused = _store.ListInstances("hello").Single(i => i.Id == "hello/web/0");
        await Settle(controller);

        Assert.False(paused.Draining);
        Assert.Equal(1, _store.ListInstances("hello").Single(i => i.Id == "hello/web/0").Revision); // nothing moves while paused
        await control.ActAsync("hello", Heddle.Controller.Api.UpgradeAction.Resume);
        for (var i = 0; i < 4; i++)
        {
            await Settle(controller);
            _time.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(WalkPhase.Completed, _store.GetService("hello")!.Walk!.Phase);
    }
}

/// <summary>On the embedded SQLite store.</summary>
public sealed class SqliteUpgradeReconcileTests() : UpgradeReconcileTests((directory, time) => ClusterStores.OpenSqliteAsync(directory.Combine("cluster.db"), time).GetAwaiter().GetResult().Cluster);

/// <summary>On the key-value cluster store (as on etcd), over the in-memory key-value store.</summary>
public sealed class KvUpgradeReconcileTests() : UpgradeReconcileTests((_, time) => KvStores.InMemory(time));
