using System.Collections.Concurrent;
using Heddle.Controller.Agents;
using Heddle.Controller.Dns;
using Heddle.Controller.LoadBalancing;
using Heddle.Controller.Publishing;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Publishing;

/// <summary>
/// The store's change feed and its one consumer: every committed change reported as a typed change, this controller's
/// own and another's; events reaching followers and the data planes' views; another controller's writes queued here.
/// Two controllers are two cluster stores over one key-value store.
/// </summary>
public sealed class ChangeDispatcherTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero));
    private readonly InMemoryKeyValueStore _shared = new();
    private readonly KvClusterStore _here;
    private readonly KvClusterStore _elsewhere;

    public ChangeDispatcherTests()
    {
        _here = KvStores.Over(_shared, _time);
        _elsewhere = KvStores.Over(_shared, _time);
    }

    public void Dispose()
    {
        _here.Dispose();
        _elsewhere.Dispose();
        _shared.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Fact]
    public async Task Changed_RecordsWritten_ReportedTypedHereAsLocalAndElsewhereAsNot()
    {
        var here = new ConcurrentQueue<StoreChange>();
        var elsewhere = new ConcurrentQueue<StoreChange>();
        _here.Changed += here.Enqueue;
        _elsewhere.Changed += elsewhere.Enqueue;

        // Writes with events to follow: the watch waits for them, so their own store always tells them as Here. (A local
        // write with none may be taken in by the watch first and told as Elsewhere: acted on alike.)
        await NodeAsync(_here, "n1", told: new NewEvent(EventKind.NodeJoined, "n1", "node n1 joined"));
        await DeployAsync(_here, "shop", told: new NewEvent(EventKind.DeploymentAccepted, "shop", "revision 1"));

        static bool Has(ConcurrentQueue<StoreChange> changes, RecordKind kind, string name, ChangeSource source) =>
            changes.Any(c => c.Kind == kind && c.Name == name && !c.Deleted && c.Source == source);
        Assert.True(Has(here, RecordKind.Node, "n1", ChangeSource.Here));
        Assert.True(Has(here, RecordKind.Service, "shop", ChangeSource.Here));
        Assert.Equal("n1", here.Single(c => c.Kind == RecordKind.Node).Node!.After!.Name);
        Assert.Null(here.Single(c => c.Kind == RecordKind.Node).Node!.Before);
        await UntilAsync(() => Has(elsewhere, RecordKind.Node, "n1", ChangeSource.Elsewhere) && Has(elsewhere, RecordKind.Service, "shop", ChangeSource.Elsewhere),
            "the other controller saw the node and the service");
    }

    [Fact]
    public async Task Changed_EventAdded_CarriesTheEventAsStored()
    {
        var events = new ConcurrentQueue<StoreChange>();
        _here.Changed += c =>
        {
            if (c.Kind == RecordKind.Event)
            {
                events.Enqueue(c);
            }
        };

        var stored = await _here.AddEventAsync(EventKind.NodeJoined, "n1", "node n1 joined");

        Assert.Equal(stored, Assert.Single(events).Event);
    }

    [Fact]
    public async Task VersionOf_ARecordWritten_MovesOnForItsKindOnly()
    {
        var (nodes, services) = (_here.VersionOf(RecordKind.Node), _here.VersionOf(RecordKind.Service));

        await NodeAsync(_here, "n1");

        Assert.True(_here.VersionOf(RecordKind.Node) > nodes);
        Assert.Equal(services, _here.VersionOf(RecordKind.Service));
        await DeployAsync(_here, "shop");
        Assert.True(_here.VersionOf(RecordKind.Service) > services);
        Assert.True(_here.VersionOf(RecordKind.Revision) > 0);
    }

    [Fact]
    public async Task EventAdded_ReachesAFollower()
    {
        var (events, _, _, _, _) = Dispatch(_here);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var follower = events.FollowAsync(0, deadline.Token).GetAsyncEnumerator(deadline.Token);
        var next = follower.MoveNextAsync();

        await events.AddAsync(EventKind.NodeJoined, "n1", "node n1 joined");

        Assert.True(await next);
        Assert.Equal("node n1 joined", follower.Current.Message);
    }

    [Fact]
    public async Task EventAdded_RebuildsTheDnsView()
    {
        var (events, _, dns, _, _) = Dispatch(_here);
        Assert.Empty(dns.Current.Services);
        var published = new ConcurrentQueue<Heddle.Contracts.Api.DnsRecordSet>();
        dns.Changed += published.Enqueue;
        await DeployAsync(_here, "shop"); // no event: the view is not rebuilt yet

        await events.AddAsync(EventKind.DeploymentAccepted, "shop", "revision 1");

        await UntilAsync(() => published.Any(view => view.Services.Any(s => s.Name == "shop")), "the DNS view named shop");
    }

    [Fact]
    public async Task ServiceWrittenByAnotherController_QueuedHereOnASharedStore()
    {
        var (_, queue, _, _, _) = Dispatch(_here);

        await DeployAsync(_elsewhere, "shop");

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal("shop", await queue.TakeAsync(deadline.Token));
    }

    [Fact]
    public async Task ServiceWrittenHere_QueuedByTheFeed_TheWriterSignalsNothing()
    {
        var (_, queue, _, _, _) = Dispatch(_here);

        await DeployAsync(_here, "shop");

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal("shop", await queue.TakeAsync(deadline.Token));
    }

    [Fact]
    public async Task TheReconcilersOwnCommit_SendsTheNodeItsGoalState_AndDoesNotQueueItsServiceAgain()
    {
        var (_, queue, _, agents, reconciler) = Dispatch(_here);
        await NodeAsync(_here, "n1");
        await DeployAsync(_here, "shop");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal("shop", await queue.TakeAsync(deadline.Token));
        var session = agents.Open("n1");
        session.TakeChanged(); // the first goal state of a stream, if one is marked
        var next = session.WaitForChangeAsync(deadline.Token).AsTask();
        Assert.False(next.IsCompleted);

        await reconciler.ReconcileAsync("shop", deadline.Token);

        Assert.Single(_here.ListInstances("shop"));
        await next; // told by the feed, not by the reconciler
        queue.Add("~end");
        Assert.Equal("~end", await queue.TakeAsync(deadline.Token));
    }

    [Fact]
    public async Task ANodeJoining_SendsNoOtherNodeAGoalState()
    {
        var (_, _, _, agents, _) = Dispatch(_here);
        await NodeAsync(_here, "n1");
        var session = agents.Open("n1");
        session.TakeChanged();

        await NodeAsync(_here, "n2"); // a thousand joining must not cost every connected node a goal state each

        Assert.Null(session.TakeChanged());
    }

    [Fact]
    public async Task ANodesNewAddress_SendsThePeersNodesTheirGoalStates_AndNoOneElse()
    {
        var (_, queue, _, agents, reconciler) = Dispatch(_here);
        foreach (var node in new[] { "n1", "n2", "n3" })
        {
            await NodeAsync(_here, node);
        }

        await DeployAsync(_here, "shop", instances: 2);
        await reconciler.ReconcileAsync("shop");
        var placed = _here.ListInstances("shop").Select(i => i.Node).ToList();
        Assert.Equal(2, placed.Count);
        var idle = new[] { "n1", "n2", "n3" }.Except(placed).Single();
        var (moved, peer) = (placed[0], placed[1]);
        var peerSession = agents.Open(peer);
        var idleSession = agents.Open(idle);
        peerSession.TakeChanged();
        idleSession.TakeChanged();

        await NodeAsync(_here, moved, address: "127.0.9.2");

        // A write with no events may be taken in by the store's watch first and dispatched on its thread: wait for it.
        Contracts.Agents.GoalState? told = null;
        await UntilAsync(() => (told ??= peerSession.TakeChanged()?.ToGoalState()) is not null, "the peer's node was sent a goal state");
        Assert.Contains("127.0.9.2", told!.Instances.Single().Peers.Select(p => p.Address));
        Assert.Null(idleSession.TakeChanged()); // told in the same dispatch as the peer, had it been
    }

    [Fact]
    public async Task AnInstancePlacedElsewhere_ItsNewNodeIsToldAtOnce_TheRolesOtherNodesAfterThePeerDelay()
    {
        var (_, _, _, agents, reconciler) = Dispatch(_here, _time);
        foreach (var node in new[] { "n1", "n2", "n3" })
        {
            await NodeAsync(_here, node);
        }

        await DeployAsync(_here, "shop", instances: 2);
        await reconciler.ReconcileAsync("shop");
        var placed = _here.ListInstances("shop").Select(i => i.Node).ToList();
        var spare = new[] { "n1", "n2", "n3" }.Except(placed).Single();
        var (lost, peer) = (placed[0], placed[1]);
        var spareSession = agents.Open(spare);
        var peerSession = agents.Open(peer);
        spareSession.TakeChanged();
        peerSession.TakeChanged();

        await _here.SetNodeConditionAsync(lost, NodeCondition.Down, _time.GetUtcNow());
        await reconciler.ReconcileAsync("shop");
        Assert.Contains(spare, _here.ListInstances("shop").Select(i => i.Node));

        // The node given the instance hears of it at once; the other instance's node sees its new peer a peer delay later.
        Contracts.Agents.GoalState? given = null;
        await UntilAsync(() => (given ??= spareSession.TakeChanged()?.ToGoalState()) is not null, "the spare node was sent its goal state");
        Assert.Single(given!.Instances);
        Assert.Null(peerSession.TakeChanged());
        _time.Advance(AgentSessions.DefaultPeerDelay);
        Contracts.Agents.GoalState? told = null;
        await UntilAsync(() => (told ??= peerSession.TakeChanged()?.ToGoalState()) is not null, "the peer's node was sent its goal state after the delay");
        Assert.Equal(spare, Assert.Single(told!.Instances.Single().Peers).Node);
    }

    [Fact]
    public async Task ACommitsEvents_AreStoredBeforeTheFeedTellsOfIt()
    {
        var package = await PackageAsync(_here, "shop");
        var seenWithTheService = new ConcurrentQueue<string>();
        _here.Committed += changes =>
        {
            if (changes.Any(c => c.Kind == RecordKind.Service))
            {
                foreach (var stored in _here.ListEvents(0, 100))
                {
                    seenWithTheService.Enqueue(stored.Kind);
                }
            }
        };

        Assert.True(await _here.PutDeploymentAsync(new DeploymentWrite("shop", "default", 1, package, "service: shop\nroles:\n  web: { instances: 1 }\n", "test", 0)
        {
            Events = [new NewEvent(EventKind.DeploymentAccepted, "shop", "revision 1")],
        }));

        Assert.Equal([nameof(EventKind.DeploymentAccepted)], seenWithTheService);
        var accepted = Assert.Single(_here.ListEvents(0, 100));
        Assert.Equal(("default", (long?)_here.GetService("shop")!.Incarnation), (accepted.Tenant, accepted.Incarnation));
    }

    private (EventLog Events, WorkQueue Queue, DnsRecordSource Dns, AgentSessions Agents, DeploymentReconciler Reconciler) Dispatch(KvClusterStore store, TimeProvider? sessionsTime = null)
    {
        var models = new ServiceModels(store);
        var events = new EventLog(store);
        var queue = new WorkQueue();
        var agents = new AgentSessions(new GoalStates(store, models), sessionsTime);
        var reconciler = new DeploymentReconciler(store, models, events, new ControllerOptions { StateDirectory = "/nonexistent" }, new AlwaysPublished(), _time,
            NullLogger<DeploymentReconciler>.Instance);
        var dns = new DnsRecordSource(store, models);
        _ = new ChangeDispatcher(store, queue, agents, events, new NodeWork(store, queue, reconciler), dns, new LoadBalancerConfigSource(store, models));
        return (events, queue, dns, agents, reconciler);
    }

    private static Task UntilAsync(Func<bool> condition, string what) => Poll.UntilAsync(condition, TimeSpan.FromSeconds(10), what);

    private Task NodeAsync(KvClusterStore store, string name, string address = "127.0.9.1", NewEvent? told = null) => store.PutNodeAsync(new NodeRecord
    {
        Name = name, Address = address, FaultDomain = "fd1", Labels = new Dictionary<string, string>(), MemoryMiB = 8192,
        Cores = [[0]], Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow(),
    }, told: told);

    private async Task<string> PackageAsync(KvClusterStore store, string name)
    {
        var package = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name)));
        var yaml = $"name: {name}\nroles:\n  web:\n    entryPoint: {{ command: web }}\n    size: {{ cores: 1, memoryMiB: 64 }}\n";
        await store.PutPackageAsync(new PackageRecord(package, 1, name, yaml, _time.GetUtcNow()));
        return package;
    }

    private async Task DeployAsync(KvClusterStore store, string name, int instances = 1, NewEvent? told = null)
    {
        var package = await PackageAsync(store, name);
        Assert.True(await store.PutDeploymentAsync(new DeploymentWrite(name, "default", 1, package, $"service: {name}\nroles:\n  web: {{ instances: {instances} }}\n", "test", 0)
        {
            Uid = 50_000 + name.Length, // a uid of its own already: the reconciler's pass writes nothing but its placements
            Events = told is null ? [] : [told],
        }));
    }
}
