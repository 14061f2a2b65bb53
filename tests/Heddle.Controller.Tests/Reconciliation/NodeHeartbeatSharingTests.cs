using Heddle.Controller;
using Heddle.Controller.Reconciliation;
using Heddle.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Reconciliation;

/// <summary>
/// Controllers sharing a store tell the leader which nodes they hear. One that was cut off by a partition still holds the
/// stream of an agent that has long moved to another controller: it must not tell the store its stale time, which would
/// overwrite the other controller's fresh one and have the leader judge a connected node Down (seen on the test bed).
/// </summary>
public sealed class NodeHeartbeatSharingTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-04T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly InMemoryKeyValueStore _shared = new();

    private NodeHealthMonitor Monitor(Heddle.Controller.Store.KvClusterStore store) =>
        new(store, new ControllerOptions { StateDirectory = "/nonexistent", NodeTimeout = TimeSpan.FromSeconds(10) }, _time);

    [Fact]
    public async Task AStaleSession_SharesNothing_WhenTheStoreHoldsFresherWord_OrItsLastWordIsOlderThanTheNodeTimeout()
    {
        using var leaderStore = KvStores.Over(_shared, _time);
        using var staleStore = KvStores.Over(_shared, _time);
        var leader = Monitor(leaderStore);
        var stale = Monitor(staleStore);

        stale.Seen("n1"); // the agent talked to this controller until it was cut off, then moved to the leader
        var cutOff = _time.GetUtcNow();
        _time.Advance(TimeSpan.FromSeconds(6));
        leader.Seen("n1");
        Assert.Equal(_time.GetUtcNow(), leader.ToShare(["n1"])["n1"]);
        await leaderStore.PutNodesSeenAsync(leader.ToShare(["n1"]));
        await Poll.UntilAsync(() => Task.FromResult(staleStore.NodeSeen("n1")), at => at == _time.GetUtcNow(), TimeSpan.FromSeconds(10), "the fresh word in the stale controller's view");

        Assert.Empty(stale.ToShare(["n1"])); // older than the store's
        _time.Advance(TimeSpan.FromSeconds(5));
        using var emptyStore = KvStores.InMemory(_time);
        var alone = Monitor(emptyStore);
        alone.Seen("n2");
        _time.Advance(TimeSpan.FromSeconds(11));
        Assert.Empty(alone.ToShare(["n2"])); // older than the node timeout, though the store has nothing
        Assert.True(_time.GetUtcNow() - cutOff > TimeSpan.FromSeconds(10));
        Assert.Empty(stale.ToShare(["n1"]));
    }

    [Fact]
    public void FreshWord_IsShared_OnlyForConnectedNodesHeardHere()
    {
        using var store = KvStores.InMemory(_time);
        var monitor = Monitor(store);
        monitor.Seen("n1");
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(["n1"], monitor.ToShare(["n1", "n2"]).Keys);
    }
}
