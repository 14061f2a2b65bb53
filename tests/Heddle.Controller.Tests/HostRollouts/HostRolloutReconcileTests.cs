using Heddle.Contracts.Api;
using Heddle.Controller.Agents;
using Heddle.Controller.HostRollouts;
using Heddle.Controller.Publishing;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.HostRollouts;

/// <summary>
/// A host rollout and the deployment reconciler together, on an in-memory store with a fake clock; the test plays the
/// agents (every instance placed on a Ready node not told to reboot reports Ready) and the machines (a node told to
/// reboot goes Down and comes back on its machine's image). A service of one instance keeps one Ready instance in
/// rotation on a node not being updated at every step, and its instance ends on the node it started on.
/// </summary>
public sealed class HostRolloutReconcileTests : IDisposable
{
    private const string ServiceYaml = """
        name: hello
        upgradeDomains: 1
        roles:
          web:
            entryPoint: { command: web }
            size: { cores: 1, memoryMiB: 64 }
        """;

    private static readonly string Package = new('e', 64);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero));
    private readonly KvClusterStore _store;
    private readonly DeploymentReconciler _reconciler;
    private readonly HostRolloutRunner _runner;
    private readonly GoalStates _goals;
    private readonly List<string> _events = [];

    /// <summary>The machines rebooting, and when each comes back.</summary>
    private readonly Dictionary<string, DateTimeOffset> _rebooting = new(StringComparer.Ordinal);

    public HostRolloutReconcileTests()
    {
        _store = KvStores.InMemory(_time);
        _store.Changed += c =>
        {
            if (c.Event is { } e)
            {
                _events.Add($"{e.Kind} {e.Subject} {e.Message}");
            }
        };
        var models = new ServiceModels(_store);
        _goals = new GoalStates(_store, models, _store);
        var agents = new AgentSessions(_goals);
        var events = new EventLog(_store);
        var options = new ControllerOptions { StateDirectory = "/nonexistent" };
        _reconciler = new DeploymentReconciler(_store, models, events, options, new AlwaysPublished(), _time, NullLogger<DeploymentReconciler>.Instance, hostRollouts: _store);
        _runner = new HostRolloutRunner(_store, _store, _store, options, _time, NullLogger<HostRolloutRunner>.Instance);
    }

    public void Dispose() => _store.Dispose();

    private async Task ClusterAsync(int instances = 1)
    {
        await _store.AddHostImageAsync(new HostImageRecord("img-1", new string('a', 64), 1, new string('b', 64), 1, null, _time.GetUtcNow()));
        await _store.AddHostImageAsync(new HostImageRecord("img-2", new string('c', 64), 1, new string('d', 64), 1, null, _time.GetUtcNow()));
        foreach (var (name, fd) in new[] { ("n1", "fd-a"), ("n2", "fd-b") })
        {
            await _store.AddMachineAsync(new MachineRecord(name, $"52:54:00:00:00:0{name[1]}", fd, new Dictionary<string, string>(), _time.GetUtcNow(), HostImage: "img-1"));
            await _store.PutNodeAsync(new NodeRecord
            {
                Name = name, Address = $"198.18.0.{name[1]}", FaultDomain = fd, Labels = new Dictionary<string, string>(), MemoryMiB = 1024, Cores = [[0], [1]],
                Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow(), HostImage = "img-1", Drivers = ["process"],
            });
        }

        await _store.PutPackageAsync(new PackageRecord(Package, 1, "hello", ServiceYaml, _time.GetUtcNow()));
        Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite("hello", "default", 1, Package, $"service: hello\nroles:\n  web: {{ instances: {instances} }}\n", "test", 0)));
    }

    /// <summary>A reconcile pass, then the agents: every instance placed on a Ready node not told to reboot reports Ready.</summary>
    private async Task ReconcileAsync()
    {
        for (var pass = 0; pass < 10; pass++)
        {
            var result = await _reconciler.ReconcileAsync("hello");
            AssertServing();
            var running = _store.ListNodes().Where(n => n.Condition == NodeCondition.Ready && _goals.For(n.Name).RebootInto.Length == 0).Select(n => n.Name).ToHashSet();
            foreach (var i in _store.ListInstances("hello").Where(i => i.State != InstanceState.Ready && running.Contains(i.Node)))
            {
                await _store.UpdateInstanceStatusAsync(new InstanceReportRecord(i.Node, i.Service, i.Role, i.Index, i.Generation, InstanceState.Ready, null) { Revision = i.Revision });
            }

            if (result.RequeueAfter is not { } after || after > UpgradeWalker.PublishPoll)
            {
                return;
            }
        }
    }

    /// <summary>At least one instance of web is Ready and in rotation, on a Ready node.</summary>
    private void AssertServing()
    {
        if (_store.GetHostRollout() is null)
        {
            return; // the first placement
        }

        var ready = _store.ListNodes().Where(n => n.Condition == NodeCondition.Ready).Select(n => n.Name).ToHashSet();
        Assert.Contains(_store.ListInstances("hello"), i => i.State == InstanceState.Ready && !i.Draining && ready.Contains(i.Node));
    }

    /// <summary>Steps the rollout, the reconciler and the fake agents and machines, one fake second a round, until the rollout ends.</summary>
    private async Task WalkAsync(Func<HostRollout, bool>? until = null)
    {
        for (var round = 0; round < 300 && !_store.GetHostRollout()!.IsFinished && until?.Invoke(_store.GetHostRollout()!) != true; round++)
        {
            await _runner.StepAsync();
            await ReconcileAsync();
            foreach (var node in _store.ListNodes())
            {
                // An agent already on the image named carries on.
                if (_goals.For(node.Name).RebootInto is { Length: > 0 } image && image != node.HostImage && node.Condition == NodeCondition.Ready && !_rebooting.ContainsKey(node.Name))
                {
                    // Told to reboot only once nothing placed there is in rotation; what is placed there stays.
                    Assert.DoesNotContain(_store.ListInstancesOnNode(node.Name), i => i.State == InstanceState.Ready && !i.Draining);
                    _rebooting[node.Name] = _time.GetUtcNow().AddSeconds(5);
                    await _store.PutNodeAsync(node with { Condition = NodeCondition.Down });
                }
                else if (_rebooting.TryGetValue(node.Name, out var back) && _time.GetUtcNow() >= back)
                {
                    _rebooting.Remove(node.Name);
                    await _store.PutNodeAsync(node with { Condition = NodeCondition.Ready, HostImage = _store.GetMachine(node.Name)!.HostImage, LastSeen = _time.GetUtcNow() });
                }
            }

            _time.Advance(TimeSpan.FromSeconds(1));
        }
    }

    [Fact]
    public async Task Rollout_TwoInstancesOnTwoNodes_NeedsNoSurge_KeepsOneInRotationThroughout_AndEachEndsOnItsOwnNode()
    {
        await ClusterAsync(instances: 2);
        await ReconcileAsync();
        var before = _store.ListInstances("hello").ToDictionary(i => i.Index);
        Assert.Equal(2, before.Values.Select(i => i.Node).Distinct().Count());
        _events.Clear(); // the first placement's
        var (rollout, _) = HostRolloutPlanner.Plan("img-2", 1, _store.ListHostImages(), _store.ListMachines(), _store.ListNodes(), null, _time.GetUtcNow());
        await _store.StartHostRolloutAsync(rollout!);

        await WalkAsync();

        Assert.Equal(HostRolloutPhase.Done, _store.GetHostRollout()!.Phase);
        var after = _store.ListInstances("hello").ToDictionary(i => i.Index);
        Assert.Equal([0, 1], after.Keys.Order());
        Assert.All(after.Values, i => Assert.Equal((before[i.Index].Node, InstanceState.Ready, false), (i.Node, i.State, i.Draining)));
        Assert.DoesNotContain(_events, e => e.StartsWith($"{EventKind.InstancePlaced} ", StringComparison.Ordinal) || e.StartsWith($"{EventKind.InstanceMoved} ", StringComparison.Ordinal));
        Assert.Equal(2, _events.Count(e => e.StartsWith($"{EventKind.InstanceDraining} ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Rollout_OneInstanceService_KeepsAReadyInstanceInRotationThroughout_AndEndsWithItsCountAgain_OnItsOwnNode()
    {
        await ClusterAsync();
        await ReconcileAsync();
        var before = Assert.Single(_store.ListInstances("hello"));
        var (rollout, _) = HostRolloutPlanner.Plan("img-2", 1, _store.ListHostImages(), _store.ListMachines(), _store.ListNodes(), null, _time.GetUtcNow());
        await _store.StartHostRolloutAsync(rollout!);

        await WalkAsync();

        var done = _store.GetHostRollout()!;
        Assert.Equal(HostRolloutPhase.Done, done.Phase);
        Assert.Equal(["n1", "n2"], done.Done);
        Assert.All(_store.ListNodes(), n => Assert.Equal("img-2", n.HostImage));
        for (var i = 0; i < 5; i++)
        {
            await ReconcileAsync(); // the surge instance, if one is left, is drained and released
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        var after = Assert.Single(_store.ListInstances("hello"));
        Assert.Equal((0, InstanceState.Ready, false, before.Node), (after.Index, after.State, after.Draining, after.Node));
        Assert.Equal(before.Cpus, after.Cpus);
        Assert.True(after.Generation > before.Generation); // a fresh run, started by the agent that came back
        Assert.DoesNotContain(_events, e => e.StartsWith($"{EventKind.InstanceMoved} ", StringComparison.Ordinal));
        Assert.Contains(_events, e => e.StartsWith($"{EventKind.InstancePlaced} hello/web/1 ", StringComparison.Ordinal)); // the surge
        Assert.Contains(_events, e => e.StartsWith($"{EventKind.InstanceRemoved} hello/web/1 ", StringComparison.Ordinal)); // and its release
    }

    [Fact]
    public async Task Rollback_WhileANodeReboots_EndsWithEveryMachineOnItsPreviousImage_AndTheServiceWholeAndInRotation()
    {
        await ClusterAsync(instances: 2);
        await ReconcileAsync();
        var (rollout, _) = HostRolloutPlanner.Plan("img-2", 1, _store.ListHostImages(), _store.ListMachines(), _store.ListNodes(), null, _time.GetUtcNow());
        await _store.StartHostRolloutAsync(rollout!);
        await WalkAsync(r => r.InProgress.Any(n => n.Stage == HostNodeStage.Rebooting) && _rebooting.Count > 0);
        var rebooting = Assert.Single(_rebooting.Keys);
        Assert.Equal(NodeCondition.Down, _store.GetNode(rebooting)!.Condition);

        var walking = _store.GetHostRollout()!;
        Assert.True(await _store.UpdateHostRolloutAsync(HostRolloutWalker.RollBack(walking, "rolled back by the test", _time.GetUtcNow())));
        await WalkAsync();

        var done = _store.GetHostRollout()!;
        Assert.Equal((HostRolloutPhase.Done, true), (done.Phase, done.RollingBack));
        Assert.All(_store.ListMachines(), m => Assert.Equal("img-1", m.HostImage));
        Assert.All(_store.ListNodes(), n => Assert.Equal(("img-1", NodeCondition.Ready), (n.HostImage, n.Condition)));
        for (var i = 0; i < 5; i++)
        {
            await ReconcileAsync();
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        var instances = _store.ListInstances("hello");
        Assert.Equal([0, 1], instances.Select(i => i.Index).Order());
        Assert.All(instances, i => Assert.Equal((InstanceState.Ready, false), (i.State, i.Draining)));
    }
}
