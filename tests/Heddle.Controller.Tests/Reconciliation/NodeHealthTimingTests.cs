using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;
using Heddle.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Reconciliation;

/// <summary>
/// When a silent node is judged Down: within a tick of its node timeout, not up to a second later; and the nodes are
/// walked about once per timeout while they are all heard, not at every tick.
/// </summary>
public sealed class NodeHealthTimingTests
{
    private static readonly TimeSpan NodeTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Tick = NodeHealthMonitor.TickOf(NodeTimeout);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-07T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly InMemoryKeyValueStore _kv = new();

    [Fact]
    public async Task ASilentNode_IsDownWithinATickOfItsTimeout_AndHeardNodesAreNotWalkedEveryTick()
    {
        using var store = KvStores.Over(_kv, _time);
        string[] nodes = ["n1", "n2", "n3"];
        foreach (var name in nodes)
        {
            await store.PutNodeAsync(Node(name));
        }

        var monitor = new NodeHealthMonitor(store, new ControllerOptions { StateDirectory = "/nonexistent", NodeTimeout = NodeTimeout }, _time);
        using var stop = new CancellationTokenSource();
        var running = monitor.RunAsync(stop.Token);
        var ticks = 0L;

        // Every node says something every second for 30 s (past the grace of the monitor's start, two timeouts).
        await ForAsync(TimeSpan.FromSeconds(30), heard: nodes);
        var walksBefore = monitor.Counts.Walks;
        await ForAsync(TimeSpan.FromSeconds(20), heard: nodes);
        var walks = monitor.Counts.Walks - walksBefore;
        Assert.All(nodes, n => Assert.Equal(NodeCondition.Ready, store.GetNode(n)!.Condition));
        Assert.InRange(walks, 1, 4); // 200 ticks in those 20 s; a walk about every 9 s

        // n3 falls silent just after it was last heard: Down once its timeout has passed, within a tick of it.
        var lastHeard = monitor.LastSeen("n3")!.Value;
        await ForAsync(lastHeard + NodeTimeout - Tick - _time.GetUtcNow(), heard: ["n1", "n2"]);
        Assert.Equal(NodeCondition.Ready, store.GetNode("n3")!.Condition);
        await ForAsync(3 * Tick, heard: ["n1", "n2"]);
        Assert.Equal(NodeCondition.Down, store.GetNode("n3")!.Condition);
        var down = Assert.Single(store.ListEvents(0, 100), e => e.Kind == nameof(EventKind.NodeDown));
        Assert.InRange(down.Time - lastHeard, NodeTimeout, NodeTimeout + 2 * Tick);
        Assert.Equal(NodeCondition.Ready, store.GetNode("n1")!.Condition);

        // It comes back (its record changes): walked again at once, and judged again when it falls silent again.
        monitor.Seen("n3");
        await store.SetNodeConditionAsync("n3", NodeCondition.Ready, _time.GetUtcNow());
        await ForAsync(NodeTimeout + 3 * Tick, heard: ["n1", "n2"]);
        Assert.Equal(NodeCondition.Down, store.GetNode("n3")!.Condition);

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        // Advances the clock a tick at a time, hearing the named nodes once a second, and waits for each tick to be taken.
        async Task ForAsync(TimeSpan span, string[] heard)
        {
            for (var elapsed = TimeSpan.Zero; elapsed < span; elapsed += Tick)
            {
                if (_time.GetUtcNow().Millisecond < Tick.TotalMilliseconds)
                {
                    foreach (var node in heard)
                    {
                        monitor.Seen(node);
                    }
                }

                _time.Advance(Tick);
                ticks++;
                await Poll.UntilAsync(() => monitor.Counts.Ticks >= ticks, TimeSpan.FromSeconds(10), $"tick {ticks} taken");
            }
        }
    }

    private NodeRecord Node(string name) => new()
    {
        Name = name, Address = "127.0.0.1", FaultDomain = "fd1", Labels = new Dictionary<string, string>(), MemoryMiB = 1024, Cores = [[0], [1]],
        Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow(),
    };
}
