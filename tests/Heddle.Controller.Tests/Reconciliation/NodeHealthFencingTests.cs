using Heddle.Controller.Leadership;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;
using Heddle.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Reconciliation;

/// <summary>
/// Only the leader judges nodes Down, and only within its term: a controller whose term ended without it noticing yet
/// (cut off from the store's majority while another was elected) must not mark Down a node that the new leader hears,
/// or the new leader would move that node's instances.
/// </summary>
public sealed class NodeHealthFencingTests
{
    private static readonly TimeSpan NodeTimeout = TimeSpan.FromSeconds(2);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-04T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly InMemoryKeyValueStore _kv = new();

    [Fact]
    public async Task ALeaderWhoseTermEnded_MarksNoNodeDown_WhileTheLeaderOfTheNewTermDoes()
    {
        using var store = KvStores.Over(_kv, _time);
        await store.PutNodeAsync(new NodeRecord { Name = "n1", Address = "127.0.0.1", FaultDomain = "fd1", Labels = new Dictionary<string, string>(), MemoryMiB = 1024, Cores = [[0], [1]], Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow() });
        const string LeaderKey = "election/leader";
        var oldTerm = (await _kv.CommitAsync([], [KvWrite.Put(LeaderKey, "a"u8.ToArray())])).Revision;
        var newTerm = (await _kv.CommitAsync([], [KvWrite.Put(LeaderKey, "b"u8.ToArray())])).Revision;

        await JudgeAsync(store, new Heddle.Controller.Leadership.Leadership("a", oldTerm, LeaderKey));
        Assert.Equal(NodeCondition.Ready, store.GetNode("n1")!.Condition);
        Assert.DoesNotContain(store.ListEvents(0, 100), e => e.Kind == nameof(EventKind.NodeDown));

        await JudgeAsync(store, new Heddle.Controller.Leadership.Leadership("b", newTerm, LeaderKey));
        Assert.Equal(NodeCondition.Down, store.GetNode("n1")!.Condition);
        Assert.Single(store.ListEvents(0, 100), e => e.Kind == nameof(EventKind.NodeDown));
    }

    [Fact]
    public async Task TheControllersOwnStall_IsNotANodesSilence_ButSilenceAfterItIs()
    {
        using var store = KvStores.Over(_kv, _time);
        await store.PutNodeAsync(new NodeRecord { Name = "n1", Address = "127.0.0.1", FaultDomain = "fd1", Labels = new Dictionary<string, string>(), MemoryMiB = 1024, Cores = [[0], [1]], Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow() });
        var monitor = new NodeHealthMonitor(store, new ControllerOptions { StateDirectory = "/nonexistent", NodeTimeout = NodeTimeout }, _time);
        _time.Advance(3 * NodeTimeout); // past the grace of the monitor's start
        monitor.Seen("n1");

        // The judging tick due a moment later came 5 s late: the controller was paused, and n1's heartbeats of that time
        // wait unread in its stream.
        var due = _time.GetUtcNow() + TimeSpan.FromMilliseconds(200);
        _time.Advance(TimeSpan.FromSeconds(5));
        monitor.NoteTick(due, _time.GetUtcNow());
        await monitor.JudgeAsync();
        Assert.Equal(NodeCondition.Ready, store.GetNode("n1")!.Condition);

        // Silence after the stall counts: a node timeout of it, and n1 is Down.
        _time.Advance(NodeTimeout + TimeSpan.FromMilliseconds(500));
        await monitor.JudgeAsync();
        Assert.Equal(NodeCondition.Down, store.GetNode("n1")!.Condition);
    }

    [Fact]
    public async Task ATickOnTime_GivesNoCredit_AndASilentNodeIsDownAfterTheTimeout()
    {
        using var store = KvStores.Over(_kv, _time);
        await store.PutNodeAsync(new NodeRecord { Name = "n1", Address = "127.0.0.1", FaultDomain = "fd1", Labels = new Dictionary<string, string>(), MemoryMiB = 1024, Cores = [[0], [1]], Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow() });
        var monitor = new NodeHealthMonitor(store, new ControllerOptions { StateDirectory = "/nonexistent", NodeTimeout = NodeTimeout }, _time);
        _time.Advance(3 * NodeTimeout);
        monitor.Seen("n1");

        var due = _time.GetUtcNow() + NodeTimeout;
        _time.Advance(NodeTimeout + NodeHealthMonitor.StallMinimum); // the tick came on time, within the allowance
        monitor.NoteTick(due, _time.GetUtcNow());
        await monitor.JudgeAsync();
        Assert.Equal(NodeCondition.Down, store.GetNode("n1")!.Condition);
    }

    /// <summary>A monitor in that term judges n1 after more than two node timeouts without a word from it (the first after its start is grace).</summary>
    private async Task<NodeHealthMonitor> JudgeAsync(KvClusterStore store, Heddle.Controller.Leadership.Leadership term)
    {
        var monitor = new NodeHealthMonitor(store,
            new ControllerOptions { StateDirectory = "/nonexistent", NodeTimeout = NodeTimeout }, _time, new LeaderTerm { Current = term });
        _time.Advance(3 * NodeTimeout);
        await monitor.JudgeAsync();
        return monitor;
    }
}
