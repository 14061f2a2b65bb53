using Heddle.Contracts.Agents;
using Heddle.Controller.Agents;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Agents;

/// <summary>
/// A goal state given as what changed of its peers (<see cref="PeerChanges"/>) and what a stream is sent
/// (<see cref="GoalSender"/>): the changes made back into the goal state equal the goal state computed whole, and
/// anything but peers sends it whole.
/// </summary>
public sealed class PeerChangesTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero));
    private readonly IClusterStore _store;
    private readonly GoalStates _goals;
    private readonly DeploymentReconciler _reconciler;

    public PeerChangesTests()
    {
        _store = KvStores.InMemory(_time);
        var models = new ServiceModels(_store);
        _goals = new GoalStates(_store, models);
        _reconciler = new DeploymentReconciler(_store, models, new EventLog(_store),
            new ControllerOptions { StateDirectory = "/nonexistent" }, new AlwaysPublished(), _time, NullLogger<DeploymentReconciler>.Instance);
    }

    public void Dispose() => _store.Dispose();

    [Fact]
    public async Task Between_PeersTurningReadyElsewhere_AppliedGivesTheWholeGoalState()
    {
        await ClusterAsync(instances: 6); // two instances of the role on each of three nodes
        var sent = _goals.For("n1");
        Assert.Equal(2, sent.Instances.Count);

        foreach (var instance in _store.ListInstances("a").Where(i => i.Node != "n1"))
        {
            await ReadyAsync(instance, port: 7000 + instance.Index);
        }

        var next = _goals.For("n1");
        var changes = PeerChanges.Between(sent, next);

        Assert.NotNull(changes);
        var role = Assert.Single(changes.Roles);
        Assert.Equal(4, role.Changed.Count);
        Assert.Empty(role.Removed);
        Assert.Equal(next, changes.ApplyTo(sent));
    }

    [Fact]
    public async Task Between_APeerOnTheSameNode_IsSeenByTheOtherInstanceThere()
    {
        await ClusterAsync(instances: 6);
        var sent = _goals.For("n1");
        await ReadyAsync(_store.ListInstancesOnNode("n1")[0], port: 7100);
        var next = _goals.For("n1");

        var changes = PeerChanges.Between(sent, next);

        Assert.NotNull(changes);
        Assert.Single(Assert.Single(changes.Roles).Changed);
        Assert.Equal(next, changes.ApplyTo(sent));
    }

    [Fact]
    public void Between_APeerGone_IsRemoved()
    {
        var sent = Goal(1, Instance("a/web/0", Peer("a/web/1", 1, ready: true), Peer("a/web/2", 2, ready: true)));
        var next = Goal(2, Instance("a/web/0", Peer("a/web/2", 2, ready: true)));

        var changes = PeerChanges.Between(sent, next);

        Assert.NotNull(changes);
        Assert.Equal(["a/web/1"], Assert.Single(changes.Roles).Removed);
        Assert.Equal(next, changes.ApplyTo(sent));
    }

    [Fact]
    public void Between_OnlyTheVersionChanged_IsEmpty()
    {
        var sent = Goal(1, Instance("a/web/0", Peer("a/web/1", 1, ready: true)));
        var next = Goal(2, Instance("a/web/0", Peer("a/web/1", 1, ready: true)));

        Assert.True(PeerChanges.Between(sent, next)!.IsEmpty);
    }

    [Fact]
    public void Between_AnInstanceAddedOrASettingChanged_IsNull_ForAnAgentThatTakesPeerChangesAlone()
    {
        var sent = Goal(1, Instance("a/web/0", Peer("a/web/1", 1, ready: true)));
        var added = Goal(2, Instance("a/web/0", Peer("a/web/1", 1, ready: true)), Instance("a/web/1", Peer("a/web/0", 0, ready: false)));
        var setting = Goal(2, Instance("a/web/0", Peer("a/web/1", 1, ready: true)));
        setting.Instances[0].Settings["colour"] = "blue";

        Assert.Null(PeerChanges.Between(sent, added));
        Assert.Null(PeerChanges.Between(sent, setting));
    }

    [Fact]
    public void Between_RandomChangesOfTwoLocalInstancesPeers_AppliedGivesTheNextGoalState_AndPeersInAnyOrderGiveTheSameChanges()
    {
        var random = new Random(27);
        for (var round = 0; round < 300; round++)
        {
            // Two instances of a role of up to 12 here (a/web/0 and a/web/1), and one of another role; peers in index order.
            var before = Enumerable.Range(0, random.Next(2, 12)).Select(i => Peer($"a/web/{i}", i, ready: random.Next(2) == 0)).ToList();
            var after = before.Where(p => p.Index < 2 || random.Next(5) > 0)
                .Select(p => random.Next(3) == 0 ? new Peer(p) { Ready = !p.Ready } : random.Next(4) == 0 ? new Peer(p) { Address = "127.0.9.3" } : p)
                .Concat(Enumerable.Range(12, random.Next(3)).Select(i => Peer($"a/web/{i}", i, ready: true))).ToList();
            var other = Peer("b/db/1", 1, ready: true);
            GoalState GoalOf(long version, List<Peer> peers) => Goal(version,
                Instance("a/web/0", [.. peers.Where(p => p.Index != 0)]), Instance("a/web/1", [.. peers.Where(p => p.Index != 1)]), Instance("b/db/0", other));
            var (sent, next) = (GoalOf(1, before), GoalOf(2, after));

            var changes = PeerChanges.Between(sent, next)!;

            Assert.Equal(next, changes.ApplyTo(sent));
            Assert.All(changes.Roles, r => Assert.Equal(("a", "web"), (r.Service, r.Role)));
            var expected = after.Where(p => before.FirstOrDefault(b => b.InstanceId == p.InstanceId) is not { } b || !b.Equals(p)).Select(p => p.InstanceId).Order().ToList();
            var role = changes.Roles.SingleOrDefault();
            Assert.Equal(expected, role?.Changed.Select(p => p.InstanceId).Order().ToList() ?? []);
            Assert.Equal(before.Select(p => p.InstanceId).Except(after.Select(p => p.InstanceId)).Order(), role?.Removed.ToList() ?? []);

            var shuffled = GoalOf(2, [.. after.OrderBy(_ => random.Next())]);
            var unordered = PeerChanges.Between(sent, shuffled)!;
            Assert.Equal(role?.Changed.ToList() ?? [], unordered.Roles.SingleOrDefault()?.Changed.ToList() ?? []);
            Assert.Equal(role?.Removed.ToList() ?? [], unordered.Roles.SingleOrDefault()?.Removed.ToList() ?? []);
        }
    }

    [Fact]
    public void Between_PeersAsSharedRoleArrays_GiveWhatComparingEachInstancesPeersGives_AndEachPairOfArraysIsComparedOnce()
    {
        var random = new Random(29);
        for (var round = 0; round < 300; round++)
        {
            // A role of up to 12 peers in one array per version, as the controller shares them; one to three of its
            // instances on this node, each with the array less itself; some peers changed, gone or new in the next array.
            var sent = Enumerable.Range(0, random.Next(1, 12)).Select(i => Peer($"a/web/{i}", i, ready: random.Next(2) == 0)).ToArray();
            var next = sent.Where(_ => random.Next(5) > 0)
                .Select(p => random.Next(3) == 0 ? new Peer(p) { Ready = !p.Ready } : random.Next(4) == 0 ? new Peer(p) { Address = "127.0.9.3" } : p)
                .Concat(Enumerable.Range(12, random.Next(3)).Select(i => Peer($"a/web/{i}", i, ready: true))).ToArray();
            var here = Enumerable.Range(0, 14).OrderBy(_ => random.Next()).Take(random.Next(1, 4)).Order().ToList();
            GoalEntry Entry(int index, Peer[] role) => new(new InstanceGoal { InstanceId = $"a/web/{index}", Service = "a", Role = "web", Index = index }, new RolePeers(role, index));
            List<GoalEntry> Copied(List<GoalEntry> entries) => [.. entries.Select(e => e with { Peers = e.Peers.ToList() })];
            var (before, after) = (here.Select(i => Entry(i, sent)).ToList(), here.Select(i => Entry(i, next)).ToList());

            var shared = PeerChanges.Between(1, 2, before, after, instances: true)!;

            Assert.Equal(PeerChanges.Between(1, 2, Copied(before), Copied(after), instances: true), shared);
            var whole = new GoalView(1, string.Empty, before).ToGoalState();
            Assert.Equal(new GoalView(2, string.Empty, after).ToGoalState(), shared.ApplyTo(whole));
            Assert.Equal(shared, PeerChanges.Between(1, 2, before, after, instances: true)); // the kept difference, again
            Assert.Empty(PeerChanges.Between(1, 2, before, [.. here.Select(i => Entry(i, sent))], instances: true)!.Roles);
        }
    }

    [Fact]
    public async Task Between_AScaleThatPlacesAnInstanceHere_SendsItWhole_AndTheRelabelledOneWithoutItsPeers()
    {
        await ClusterAsync(instances: 3); // one instance of the role on each node
        var sent = _goals.For("n1");
        Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite("a", "default", 2, Package, "service: a\nroles:\n  web: { instances: 6 }\n", "test", _store.GetService("a")!.Version)));
        await _reconciler.ReconcileAsync("a");
        var next = _goals.For("n1");
        Assert.Equal(2, next.Instances.Count);

        var changes = PeerChanges.Between(sent, next, instances: true);

        Assert.NotNull(changes);
        var placed = Assert.Single(changes.Instances);
        Assert.DoesNotContain(placed.InstanceId, sent.Instances.Select(i => i.InstanceId));
        Assert.Equal(5, placed.Peers.Count);
        Assert.Empty(changes.RemovedInstances);
        var relabelled = Assert.Single(changes.Respecified); // the scale made revision 2; the instance here before runs it now
        Assert.Equal((sent.Instances[0].InstanceId, 2L), (relabelled.InstanceId, relabelled.Revision));
        Assert.Empty(relabelled.Peers);
        Assert.Equal(3, Assert.Single(changes.Roles).Changed.Count); // the three new instances, as peers of the one here before
        Assert.Equal(next, changes.ApplyTo(sent));
        Assert.Null(PeerChanges.Between(sent, next)); // an agent that takes peer changes alone gets it whole
    }

    [Fact]
    public void Between_RandomInstancesPlacedChangedAndRemoved_AppliedGivesTheNextGoalState()
    {
        var random = new Random(28);
        var ids = new[] { "a/web/0", "a/web/1", "a/web/2", "a/web/3", "b/db/0", "b/db/1" };
        GoalState Random(long version, GoalState? from)
        {
            // As the controller makes them: each instance of a role here lists the role's others, the same set for each.
            var here = ids.Where(_ => random.Next(3) > 0).ToList();
            var roles = ids.GroupBy(id => id[..^2]).ToDictionary(g => g.Key, g => g.Where(id => here.Contains(id) || random.Next(4) > 0)
                .Select(p => Peer(p, int.Parse(p[^1..], System.Globalization.CultureInfo.InvariantCulture), ready: random.Next(2) == 0)).ToArray());
            var goal = new GoalState { Version = version };
            foreach (var id in here)
            {
                var before = from?.Instances.FirstOrDefault(i => i.InstanceId == id);
                var instance = Instance(id, [.. roles[id[..^2]].Where(p => p.InstanceId != id)]);
                instance.Generation = before is not null && random.Next(4) == 0 ? before.Generation + 1 : before?.Generation ?? 1;
                goal.Instances.Add(instance);
            }

            return goal;
        }

        for (var round = 0; round < 300; round++)
        {
            var sent = Random(1, null);
            var next = Random(2, sent);

            var changes = PeerChanges.Between(sent, next, instances: true)!;

            Assert.Equal(next, changes.ApplyTo(sent));
            // Whole: exactly the instances new here; without peers, those of another generation (the one field but peers this changes).
            Assert.Equal(next.Instances.Select(i => i.InstanceId).Except(sent.Instances.Select(i => i.InstanceId)), changes.Instances.Select(i => i.InstanceId));
            Assert.Equal(next.Instances.Where(i => sent.Instances.Any(s => s.InstanceId == i.InstanceId && s.Generation != i.Generation)).Select(i => i.InstanceId),
                changes.Respecified.Select(i => i.InstanceId));
            Assert.All(changes.Respecified, i => Assert.Empty(i.Peers));
            Assert.Equal(sent.Instances.Select(i => i.InstanceId).Except(next.Instances.Select(i => i.InstanceId)).Order(StringComparer.Ordinal), changes.RemovedInstances);
        }
    }

    [Fact]
    public void ApplyTo_AnotherVersion_Throws_AndLeavesTheGoalStateAsItWas()
    {
        var sent = Goal(1, Instance("a/web/0", Peer("a/web/1", 1, ready: false)));
        var next = Goal(2, Instance("a/web/0", Peer("a/web/1", 1, ready: true)));
        var changes = PeerChanges.Between(sent, next)!;
        var copy = sent.Clone();

        Assert.Throws<InvalidOperationException>(() => changes.ApplyTo(next));
        Assert.Equal(next, changes.ApplyTo(sent));
        Assert.Equal(copy, sent);
    }

    [Fact]
    public void GoalSender_FirstWhole_ThenPeerChanges_NothingForTheSame_AndWholeForAnAgentThatPredatesThem()
    {
        var first = Goal(1, Instance("a/web/0", Peer("a/web/1", 1, ready: false)));
        var second = Goal(2, Instance("a/web/0", Peer("a/web/1", 1, ready: true)));
        var same = Goal(3, Instance("a/web/0", Peer("a/web/1", 1, ready: true)));
        var third = Goal(4, Instance("a/web/0", Peer("a/web/1", 1, ready: false)));
        var sender = new GoalSender(takesPeerChanges: true);
        var older = new GoalSender(takesPeerChanges: false);

        Assert.Equal(first, sender.Next(first)!.Goal);
        Assert.Equal(new PeerChanges { BaseVersion = 1, Version = 2, Roles = { new RolePeerChanges { Service = "a", Role = "web", Changed = { second.Instances[0].Peers } } } },
            sender.Next(second)!.Peers);
        Assert.Null(sender.Next(same));
        Assert.Equal(2, sender.Next(third)!.Peers.BaseVersion); // from the last sent, not the one skipped

        Assert.Equal(first, older.Next(first)!.Goal);
        Assert.Equal(second, older.Next(second)!.Goal);
        Assert.Null(older.Next(same));
    }

    [Fact]
    public void GoalSender_AnInstancePlacedOrGone_GoesAsChanges_ToAnAgentThatTakesThem_AndWholeToOneThatDoesNot()
    {
        var first = Goal(1, Instance("a/web/0", Peer("a/web/1", 1, ready: true)));
        var placed = Goal(2, Instance("a/web/0", Peer("a/web/1", 1, ready: true)), Instance("b/db/0"));
        var gone = Goal(3, Instance("b/db/0"));
        var sender = new GoalSender(takesPeerChanges: true, takesInstanceChanges: true);
        var peersOnly = new GoalSender(takesPeerChanges: true);

        Assert.Equal(first, sender.Next(first)!.Goal);
        var added = sender.Next(placed)!.Peers;
        Assert.Equal(["b/db/0"], added.Instances.Select(i => i.InstanceId));
        Assert.Empty(added.Roles);
        var removed = sender.Next(gone)!.Peers;
        Assert.Equal(["a/web/0"], removed.RemovedInstances);
        Assert.Equal(gone, removed.ApplyTo(added.ApplyTo(first)));

        peersOnly.Next(first);
        Assert.Equal(placed, peersOnly.Next(placed)!.Goal);
    }

    [Fact]
    public async Task GoalSender_OnTheStoresViews_EachMessageAppliedGivesTheWholeGoalState_AndAnUnchangedInstanceKeepsItsGoalObject()
    {
        await ClusterAsync(instances: 6);
        var sender = new GoalSender(takesPeerChanges: true, takesInstanceChanges: true);
        var agent = sender.Next(_goals.ViewOf("n1"))!.Goal;
        var messages = new List<ControllerMessage.BodyOneofCase>();
        async Task StepAsync(Func<Task> change)
        {
            await change();
            var view = _goals.ViewOf("n1");
            if (sender.Next(view) is { } message)
            {
                messages.Add(message.BodyCase);
                agent = message.BodyCase == ControllerMessage.BodyOneofCase.Goal ? message.Goal : message.Peers.ApplyTo(agent);
            }

            Assert.Equal(view.ToGoalState().Instances, agent.Instances);
            Assert.Equal(_goals.For("n1").Instances, agent.Instances);
        }

        var before = _goals.ViewOf("n1").Instances.Select(i => i.Spec).ToList();
        await StepAsync(async () =>
        {
            foreach (var instance in _store.ListInstances("a").Where(i => i.Node != "n1"))
            {
                await ReadyAsync(instance, port: 7000 + instance.Index);
            }
        });
        Assert.Equal(before, _goals.ViewOf("n1").Instances.Select(i => i.Spec), ReferenceEqualityComparer.Instance); // only peers changed here

        await StepAsync(async () => await ReadyAsync(_store.ListInstancesOnNode("n1")[0], port: 7100));
        await StepAsync(async () =>
        {
            Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite("a", "default", 2, Package, "service: a\nroles:\n  web: { instances: 3 }\n", "test", _store.GetService("a")!.Version)));
            for (var pass = 0; pass < 5; pass++)
            {
                await _reconciler.ReconcileAsync("a");
            }
        });

        Assert.All(messages, m => Assert.Equal(ControllerMessage.BodyOneofCase.Peers, m)); // after the first, never whole
        Assert.Equal(3, messages.Count);
    }

    [Fact]
    public async Task ANodeWrittenAgainWithItsAddress_SendsNothing_AndANodesNewAddress_SendsThePeersOnIt()
    {
        await ClusterAsync(instances: 6);
        var sender = new GoalSender(takesPeerChanges: true);
        var first = _goals.For("n1");
        Assert.NotNull(sender.Next(first)!.Goal);
        var n2 = _store.GetNode("n2")!;

        // n2's agent said Hello again: its record is written anew, its address the same.
        _time.Advance(TimeSpan.FromSeconds(5));
        await _store.PutNodeAsync(n2 with { LastSeen = _time.GetUtcNow() });
        var again = _goals.For("n1");

        Assert.Null(sender.Next(again));
        Assert.All(again.Instances.Zip(first.Instances), pair => Assert.True(pair.First.Peers.Zip(pair.Second.Peers).All(p => ReferenceEquals(p.First, p.Second)), "the same peer objects"));

        await _store.PutNodeAsync(n2 with { Address = "127.0.9.22" });
        var moved = sender.Next(_goals.For("n1"))!.Peers;

        var role = Assert.Single(moved.Roles);
        Assert.Equal(2, role.Changed.Count);
        Assert.All(role.Changed, p => Assert.Equal(("n2", "127.0.9.22"), (p.Node, p.Address)));
    }

    private async Task ClusterAsync(int instances)
    {
        foreach (var node in new[] { "n1", "n2", "n3" })
        {
            await _store.PutNodeAsync(new NodeRecord
            {
                Name = node, Address = $"127.0.9.{node[1..]}", FaultDomain = $"fd-{node}", Labels = new Dictionary<string, string>(), MemoryMiB = 8192,
                Cores = [.. Enumerable.Range(0, 2).Select(c => (IReadOnlyList<int>)[c])], Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow(),
            });
        }

        var package = Package;
        var yaml = "name: a\nroles:\n  web:\n    entryPoint: { command: web }\n    size: { cores: 1, memoryMiB: 64 }\n    endpoints:\n      http: { kind: internal, protocol: tcp }\n";
        await _store.PutPackageAsync(new PackageRecord(package, 1, "a", yaml, _time.GetUtcNow()));
        Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite("a", "default", 1, package, $"service: a\nroles:\n  web: {{ instances: {instances} }}\n", "test", 0)));
        await _reconciler.ReconcileAsync("a");
        Assert.Equal(instances, _store.ListInstances("a").Count);
    }

    private static readonly string Package = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("a"u8));

    private Task<bool> ReadyAsync(InstanceRecord instance, int port) =>
        _store.UpdateInstanceStatusAsync(new InstanceReportRecord(instance.Node, instance.Service, instance.Role, instance.Index, instance.Generation, InstanceState.Ready, null)
        {
            Ports = new Dictionary<string, int> { ["http"] = port },
            Revision = instance.Revision,
        });

    private static GoalState Goal(long version, params InstanceGoal[] instances) => new() { Version = version, Instances = { instances } };

    private static InstanceGoal Instance(string id, params Peer[] peers)
    {
        var parts = id.Split('/');
        return new InstanceGoal { InstanceId = id, Service = parts[0], Role = parts[1], Index = int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture), Revision = 1, Peers = { peers } };
    }

    private static Peer Peer(string id, int index, bool ready) => new() { InstanceId = id, Index = index, Node = "n2", Address = "127.0.9.2", Ready = ready };
}
