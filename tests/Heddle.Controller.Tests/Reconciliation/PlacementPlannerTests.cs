using Heddle.Contracts.Api;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;
using Heddle.Controller.Upgrades;
using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Reconciliation;

/// <summary>
/// The placement part of a pass on an in-memory store: missing instances go to ready nodes spread over fault domains,
/// what cannot be placed says why, instances leave nodes that are down or where they keep faulting, and an instance
/// no longer configured is drained before it is removed.
/// </summary>
public sealed class PlacementPlannerTests : IDisposable
{
    private static readonly string Package = new('d', 64);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero));
    private readonly KvClusterStore _store;
    private readonly ControllerOptions _options = new() { StateDirectory = "/nonexistent" };

    public PlacementPlannerTests() => _store = KvStores.InMemory(_time);

    public void Dispose() => _store.Dispose();

    private static string ServiceYaml(int cores) => $$"""
        name: hello
        upgradeDomains: 3
        roles:
          web:
            entryPoint: { command: web }
            size: { cores: {{cores}}, memoryMiB: 64 }
        """;

    private static string Configuration(int instances) => $"service: hello\nroles:\n  web: {{ instances: {instances} }}\n";

    private static ServiceModel Model(int instances, int cores = 1)
    {
        var diagnostics = new DiagnosticBag();
        var model = new ServiceModel(ServiceDefinitionParser.Parse(ServiceYaml(cores), diagnostics)!, ModelConfigurationParser.Parse(Configuration(instances), diagnostics, "configuration")!);
        Assert.False(diagnostics.HasErrors);
        return model;
    }

    private async Task<List<NodeRecord>> Nodes(params (string Name, string FaultDomain, NodeCondition Condition)[] nodes)
    {
        foreach (var (name, faultDomain, condition) in nodes)
        {
            await _store.PutNodeAsync(new NodeRecord
            {
                Name = name, Address = $"127.0.9.{name[1..]}", FaultDomain = faultDomain, Labels = new Dictionary<string, string>(), MemoryMiB = 4096,
                Cores = [[0], [1], [2], [3]], Condition = condition, LastSeen = _time.GetUtcNow(), Drivers = ["process"],
            });
        }

        return [.. _store.ListNodes()];
    }

    private async Task<ServiceRecord> Service(int instances)
    {
        await _store.PutPackageAsync(new PackageRecord(Package, 1, "hello", ServiceYaml(1), _time.GetUtcNow()));
        Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite("hello", "default", 1, Package, Configuration(instances), "test", 0)));
        return _store.GetService("hello")!;
    }

    private static InstanceRecord Instance(int index, string node, int restarts = 0, bool draining = false, InstanceState state = InstanceState.Pending) => new()
    {
        Service = "hello", Role = "web", Index = index, UpgradeDomain = index % 3, Node = node, Cpus = [0], MemoryMiB = 64, Generation = 1, Revision = 1,
        Restarts = restarts, Draining = draining, State = state,
    };

    private (ServicePass Pass, List<string> Failures, List<Heddle.Placement.Explanation> Unplaced) Plan(
        ServiceRecord service, ServiceModel model, IReadOnlyList<NodeRecord> nodes, IReadOnlyList<InstanceRecord> instances, bool published = true, string? evacuating = null,
        bool rebooting = false, bool walking = false)
    {
        var pass = new ServicePass(service, instances);
        var ready = nodes.Where(n => n.Condition == NodeCondition.Ready).Select(n => n.Name).ToHashSet(StringComparer.Ordinal);
        var unplaced = new List<Heddle.Placement.Explanation>();
        // evacuating: the node a host rollout drains (or reboots); walking: a rollout under way with no node leaving (one in its health gate).
        var evacuation = evacuating is null && !walking ? null
            : new HostEvacuation(new HashSet<string>(evacuating is null ? [] : [evacuating]), new HashSet<string>(rebooting && evacuating is not null ? [evacuating] : []), ready);
        var failures = new PlacementPlanner(_store, _options, TimeProvider.System).Plan(pass, model, 1, nodes, ready, () => published, unplaced, evacuation);
        return (pass, failures, unplaced);
    }

    [Fact]
    public async Task Plan_ThreeMissingInstances_OnePerFaultDomain_EachInItsUpgradeDomain()
    {
        var nodes = await Nodes(("n1", "fd1", NodeCondition.Ready), ("n2", "fd1", NodeCondition.Ready), ("n3", "fd2", NodeCondition.Ready), ("n4", "fd3", NodeCondition.Ready));
        var service = await Service(3);

        var (pass, failures, unplaced) = Plan(service, Model(3), nodes, []);

        Assert.Empty(failures);
        Assert.Empty(unplaced);
        var placed = pass.Placed.OrderBy(i => i.Index).ToList();
        Assert.Equal([0, 1, 2], placed.Select(i => i.Index));
        Assert.Equal([0, 1, 2], placed.Select(i => i.UpgradeDomain));
        Assert.All(placed, i => Assert.Equal(1, i.Revision));
        Assert.Equal(3, placed.Select(i => nodes.Single(n => n.Name == i.Node).FaultDomain).Distinct().Count());
        Assert.Equal(3, pass.Events.Count(e => e.Kind == EventKind.InstancePlaced));
    }

    [Fact]
    public async Task Plan_NoNodeHasCoresEnough_PlacesNothing_AndSaysWhyForEachInstance()
    {
        var nodes = await Nodes(("n1", "fd1", NodeCondition.Ready), ("n2", "fd2", NodeCondition.Ready));
        var service = await Service(2);

        var (pass, failures, unplaced) = Plan(service, Model(2, cores: 8), nodes, []);

        Assert.Empty(pass.Placed);
        Assert.Equal(2, unplaced.Count);
        Assert.All(unplaced, why => Assert.Equal(2, why.Nodes));
        Assert.All(unplaced, why => Assert.Contains(why.Reasons, r => r.Value == 2));
        Assert.Equal([$"hello/web/0: {unplaced[0]}", $"hello/web/1: {unplaced[1]}"], failures);
    }

    [Fact]
    public async Task Plan_InstanceOnANodeThatIsDown_MovesToAReadyNode_AndTheEventSaysWhy()
    {
        var nodes = await Nodes(("n1", "fd1", NodeCondition.Down), ("n2", "fd2", NodeCondition.Ready));
        var service = await Service(1);

        var (pass, failures, _) = Plan(service, Model(1), nodes, [Instance(0, "n1")]);

        Assert.Empty(failures);
        Assert.Equal("n2", Assert.Single(pass.Placed).Node);
        var moved = Assert.Single(pass.Events, e => e.Kind == EventKind.InstanceMoved);
        Assert.Equal("hello/web/0", moved.Subject);
        Assert.Equal("moved from node n1 to node n2 because node n1 is Down", moved.Message);
    }

    [Fact]
    public async Task Plan_InstanceOnADownNode_WithNowhereToGo_IsRemovedAllTheSame()
    {
        var nodes = await Nodes(("n1", "fd1", NodeCondition.Down));
        var service = await Service(1);

        var (pass, failures, _) = Plan(service, Model(1), nodes, [Instance(0, "n1")]);

        Assert.Single(failures);
        Assert.Empty(pass.Placed);
        Assert.Equal([("web", 0)], pass.Removed);
    }

    [Fact]
    public async Task Plan_InstanceThatKeepsRestarting_MovesOffItsNode()
    {
        var nodes = await Nodes(("n1", "fd1", NodeCondition.Ready), ("n2", "fd2", NodeCondition.Ready));
        var service = await Service(1);

        var (pass, _, _) = Plan(service, Model(1), nodes, [Instance(0, "n1", restarts: _options.RestartsBeforeMove)]);

        Assert.Equal("n2", Assert.Single(pass.Placed).Node);
        Assert.Contains(pass.Events, e => e.Kind == EventKind.InstanceMoved && e.Message == $"moved from node n1 to node n2 because it restarted {_options.RestartsBeforeMove} times on node n1");
    }

    [Fact]
    public async Task Plan_InstanceNoLongerConfigured_IsDrainedFirst_AndRemovedOnlyOnceTheDataPlanesWereTold()
    {
        var nodes = await Nodes(("n1", "fd1", NodeCondition.Ready), ("n2", "fd2", NodeCondition.Ready));
        var service = await Service(1);
        var model = Model(1);

        var (first, _, _) = Plan(service, model, nodes, [Instance(0, "n1"), Instance(1, "n2")]);
        Assert.True(first.Find("web", 1).Draining);
        Assert.Empty(first.Removed);
        Assert.Equal(UpgradeWalker.PublishPoll, first.Result.RequeueAfter);
        Assert.Contains(first.Events, e => e.Kind == EventKind.InstanceDraining && e.Subject == "hello/web/1");

        var (unpublished, _, _) = Plan(service, model, nodes, [Instance(0, "n1"), Instance(1, "n2", draining: true)], published: false);
        Assert.Empty(unpublished.Removed);
        Assert.Equal(UpgradeWalker.PublishPoll, unpublished.Result.RequeueAfter);

        var (told, _, _) = Plan(service, model, nodes, [Instance(0, "n1"), Instance(1, "n2", draining: true)], published: true);
        Assert.Equal([("web", 1)], told.Removed);
        Assert.Contains(told.Events, e => e.Kind == EventKind.InstanceRemoved && e.Subject == "hello/web/1");
        Assert.Empty(told.Placed);
    }

    [Fact]
    public async Task Plan_InstanceOnANodeBeingUpdated_AnotherReadyElsewhere_LeavesRotation_StaysPlacedThere_AndStartsAfreshThereWhenTheNodeReboots()
    {
        var nodes = await Nodes(("n1", "fd1", NodeCondition.Ready), ("n2", "fd2", NodeCondition.Ready), ("n3", "fd3", NodeCondition.Ready));
        var service = await Service(2);
        var model = Model(2);
        var other = Instance(1, "n2", state: InstanceState.Ready);

        var (first, _, _) = Plan(service, model, nodes, [Instance(0, "n1", state: InstanceState.Ready), other], evacuating: "n1");
        Assert.True(first.Find("web", 0).Draining);
        Assert.Empty(first.Placed);
        Assert.Empty(first.Removed);
        Assert.Contains(first.Events, e => e.Kind == EventKind.InstanceDraining && e.Message.Contains("starts there again after", StringComparison.Ordinal));

        var drained = Instance(0, "n1", draining: true, state: InstanceState.Ready) with { Ports = new Dictionary<string, int> { ["http"] = 20001 }, Pid = 42 };
        var (stays, _, _) = Plan(service, model, nodes, [drained, other], evacuating: "n1");
        Assert.Empty(stays.Placed); // not moved: it waits for the reboot where it is
        Assert.Empty(stays.Removed);
        Assert.True(stays.Find("web", 0).Draining);

        // Told to reboot: its node goes Down (silent while it boots the new image); the instance is not moved off it.
        var down = nodes.Select(n => n.Name == "n1" ? n with { Condition = NodeCondition.Down } : n).ToList();
        var (rebooted, _, _) = Plan(service, model, down, [drained, other], evacuating: "n1", rebooting: true);
        var fresh = Assert.Single(rebooted.Placed);
        Assert.Equal(("n1", 0, ServicePass.NewRun, InstanceState.Pending, false, 0), (fresh.Node, fresh.Index, fresh.Generation, fresh.State, fresh.Draining, fresh.Pid));
        Assert.Equal(drained.Cpus, fresh.Cpus);
        Assert.Empty(fresh.Ports);
        Assert.DoesNotContain(rebooted.Events, e => e.Kind == EventKind.InstanceMoved);

        var (waiting, _, _) = Plan(service, model, down, [fresh with { Generation = 7 }, other], evacuating: "n1", rebooting: true);
        Assert.Empty(waiting.Placed); // a fresh run already: left for the agent that comes back
        Assert.Empty(waiting.Removed);

        // Once no rollout holds it (one that failed: the node never came back), a Down node's instance moves as always.
        var (after, _, _) = Plan(service, model, down, [fresh with { Generation = 7 }, other]);
        Assert.Equal(("n3", 0), (Assert.Single(after.Placed).Node, after.Placed.Single().Index));
        Assert.Contains(after.Events, e => e.Kind == EventKind.InstanceMoved);
    }

    [Fact]
    public async Task Plan_OnlyInstanceOnANodeBeingUpdated_GetsASurgeElsewhereFirst_WhichGoesOnceItIsReadyOnItsNodeAgain()
    {
        var nodes = await Nodes(("n1", "fd1", NodeCondition.Ready), ("n2", "fd2", NodeCondition.Ready), ("n3", "fd3", NodeCondition.Ready));
        var service = await Service(1);
        var model = Model(1);
        var original = Instance(0, "n1", state: InstanceState.Ready);

        var (first, _, _) = Plan(service, model, nodes, [original], evacuating: "n1");
        var surge = Assert.Single(first.Placed);
        Assert.Equal(1, surge.Index);
        Assert.NotEqual("n1", surge.Node);
        Assert.False(first.Find("web", 0).Draining); // still serving until the surge is Ready

        var (waiting, _, _) = Plan(service, model, nodes, [original, surge], evacuating: "n1");
        Assert.False(waiting.Find("web", 0).Draining);

        var ready = surge with { State = InstanceState.Ready };
        var (draining, _, _) = Plan(service, model, nodes, [original, ready], evacuating: "n1");
        Assert.True(draining.Find("web", 0).Draining);
        Assert.False(draining.Find("web", 1).Draining);

        var (rebooting, _, _) = Plan(service, model, nodes, [original with { Draining = true }, ready], evacuating: "n1", rebooting: true);
        var fresh = Assert.Single(rebooting.Placed);
        Assert.Equal(("n1", 0), (fresh.Node, fresh.Index));
        Assert.False(rebooting.Find("web", 1).Draining); // the surge serves while the node reboots

        // n1 is back on the new image (its health gate: the rollout goes on, nothing is leaving).
        var back = fresh with { Generation = 7 };
        var (starting, _, _) = Plan(service, model, nodes, [back, ready], walking: true);
        Assert.False(starting.Find("web", 1).Draining); // started there again, not Ready yet: the surge stays in rotation
        Assert.Empty(starting.Removed);

        var (settled, _, _) = Plan(service, model, nodes, [back with { State = InstanceState.Ready }, ready], walking: true);
        Assert.True(settled.Find("web", 1).Draining); // Ready on its node again: the surge is released like any instance no longer wanted, drained first
        Assert.False(settled.Find("web", 0).Draining);
        Assert.Equal("n1", settled.Find("web", 0).Node);
    }

    [Fact]
    public async Task Plan_InstanceLeftDrainingAtTheDesiredRevision_OnANodeNoRolloutHolds_GoesBackIntoRotation_ButNotOneAnUpgradeDrains()
    {
        var nodes = await Nodes(("n1", "fd1", NodeCondition.Ready), ("n2", "fd2", NodeCondition.Ready));
        var service = await Service(2);
        var model = Model(2);
        var left = Instance(0, "n1", draining: true, state: InstanceState.Ready);
        var upgrading = Instance(1, "n2", draining: true, state: InstanceState.Ready) with { Revision = 0 };

        var (pass, _, _) = Plan(service, model, nodes, [left, upgrading]);

        Assert.False(pass.Find("web", 0).Draining);
        Assert.Contains(pass.Events, e => e.Kind == EventKind.InstanceReturned && e.Subject == "hello/web/0");
        Assert.True(pass.Find("web", 1).Draining); // at another revision: an upgrade's drain, left to the walk
        Assert.DoesNotContain(pass.Events, e => e.Kind == EventKind.InstanceReturned && e.Subject == "hello/web/1");
    }
}
