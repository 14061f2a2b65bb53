using Heddle.Contracts.Api;
using Heddle.Controller.Agents;
using Heddle.Controller.HostRollouts;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.HostRollouts;

/// <summary>
/// The host rollout walked by <see cref="HostRolloutRunner"/> on an in-memory store with a fake clock. The test plays
/// the machines: a node whose goal state says to reboot comes back (after a few fake seconds) reporting the image its
/// machine is set to boot, unless the test holds it down. No instance runs on the nodes here (the placement side of
/// draining has its tests in PlacementPlannerTests), so each node drains at once.
/// </summary>
public sealed class HostRolloutWalkerTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero));
    private readonly KvClusterStore _store;
    private readonly GoalStates _goals;
    private readonly HostRolloutRunner _runner;
    private readonly HostRolloutControl _control;
    private readonly HostRolloutTiming _timing = HostRolloutTiming.Default;
    private readonly List<string> _events = [];
    private readonly HashSet<string> _heldDown = new(StringComparer.Ordinal);

    /// <summary>Each step's nodes being walked, as "node@domain".</summary>
    private readonly List<IReadOnlyList<string>> _walking = [];

    public HostRolloutWalkerTests()
    {
        _store = KvStores.InMemory(_time);
        _store.Changed += c =>
        {
            if (c.Event is { } e)
            {
                _events.Add($"{e.Kind} {e.Message}");
            }
        };
        var models = new ServiceModels(_store);
        _goals = new GoalStates(_store, models, _store);
        var agents = new AgentSessions(_goals);
        var events = new EventLog(_store);
        var options = new ControllerOptions { StateDirectory = "/nonexistent", HostRollout = _timing };
        _runner = new HostRolloutRunner(_store, _store, _store, options, _time, NullLogger<HostRolloutRunner>.Instance);
        _control = new HostRolloutControl(_store, _store, _store, events, _runner, _time);
    }

    public void Dispose() => _store.Dispose();

    /// <summary>Machines and their nodes on img-1: n1 and n4 in upgrade domain fd-b, n2 and n3 in fd-a (n3 by its label).</summary>
    private async Task ClusterAsync()
    {
        foreach (var image in new[] { "img-1", "img-2" })
        {
            await _store.AddHostImageAsync(new HostImageRecord(image, new string('a', 64), 1, new string('b', 64), 1, null, _time.GetUtcNow()));
        }

        foreach (var (name, fd, label) in new[] { ("n1", "fd-b", (string?)null), ("n2", "fd-a", null), ("n3", "fd-z", "fd-a"), ("n4", "fd-b", null) })
        {
            var labels = label is null ? new Dictionary<string, string>() : new Dictionary<string, string> { [HostRolloutPlanner.UpgradeDomainLabel] = label };
            Assert.Equal(MachineAddOutcome.Added, await _store.AddMachineAsync(new MachineRecord(name, $"52:54:00:00:00:0{name[1]}", fd, labels, _time.GetUtcNow(), HostImage: "img-1")));
            await _store.PutNodeAsync(new NodeRecord
            {
                Name = name, Address = $"198.18.0.{name[1]}", FaultDomain = fd, Labels = labels, MemoryMiB = 1024, Cores = [[0]], Condition = NodeCondition.Ready,
                LastSeen = _time.GetUtcNow(), HostImage = "img-1",
            });
        }
    }

    private async Task StartAsync(string image = "img-2", int maxParallel = 1)
    {
        var (rollout, refusal) = HostRolloutPlanner.Plan(image, maxParallel, _store.ListHostImages(), _store.ListMachines(), _store.ListNodes(), _store.GetHostRollout(), _time.GetUtcNow());
        Assert.Null(refusal);
        Assert.Equal(HostRolloutStartOutcome.Started, await _store.StartHostRolloutAsync(rollout!));
    }

    /// <summary>
    /// Steps the rollout and plays the machines, one fake second a round, until <paramref name="until"/> holds or the rollout ended.
    /// A node told to reboot goes Down at once and comes back 3 s later on the image its machine is set to boot.
    /// </summary>
    private async Task WalkAsync(Func<HostRollout, bool>? until = null, int rounds = 2000)
    {
        var rebooting = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        for (var round = 0; round < rounds; round++)
        {
            await _runner.StepAsync();
            var rollout = _store.GetHostRollout()!;
            _walking.Add([.. rollout.InProgress.Select(n => $"{n.Node}@{n.Domain}")]);
            if (rollout.IsFinished || until?.Invoke(rollout) == true)
            {
                return;
            }

            foreach (var node in _store.ListNodes())
            {
                if (_goals.For(node.Name).RebootInto is { Length: > 0 } && !rebooting.ContainsKey(node.Name) && node.Condition == NodeCondition.Ready && !_heldDown.Contains(node.Name))
                {
                    rebooting[node.Name] = _time.GetUtcNow().AddSeconds(3);
                    await _store.PutNodeAsync(node with { Condition = NodeCondition.Down });
                }
                else if (rebooting.TryGetValue(node.Name, out var back) && _time.GetUtcNow() >= back)
                {
                    rebooting.Remove(node.Name);
                    await _store.PutNodeAsync(node with { Condition = NodeCondition.Ready, HostImage = _store.GetMachine(node.Name)!.HostImage, LastSeen = _time.GetUtcNow() });
                }
            }

            _time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Fail($"the rollout did not get there in {rounds} rounds: {_store.GetHostRollout()}");
    }

    private IEnumerable<string> Started() => _events.Where(e => e.StartsWith(nameof(EventKind.HostNodeDraining), StringComparison.Ordinal))
        .Select(e => System.Text.RegularExpressions.Regex.Match(e, ": node (\\S+) ").Groups[1].Value);

    [Fact]
    public async Task Rollout_WalksNodesInUpgradeDomainOrder_OneAtATime_AndEndsWithEveryMachineOnTheImage()
    {
        await ClusterAsync();
        await StartAsync();

        await WalkAsync();

        var rollout = _store.GetHostRollout()!;
        Assert.Equal(HostRolloutPhase.Done, rollout.Phase);
        Assert.Equal(["n2", "n3", "n1", "n4"], rollout.Order.Select(t => t.Node));
        Assert.Equal(["n2", "n3", "n1", "n4"], Started());
        Assert.Equal(["n2", "n3", "n1", "n4"], rollout.Done);
        Assert.All(_walking, w => Assert.True(w.Count <= 1));
        Assert.All(_store.ListMachines(), m => Assert.Equal("img-2", m.HostImage));
        Assert.All(_store.ListNodes(), n => Assert.Equal("img-2", n.HostImage));
        Assert.Contains(_events, e => e.StartsWith($"{EventKind.HostNodeRebooting} host rollout to img-2: node n2 is drained; told to reboot into host image img-2", StringComparison.Ordinal));
        Assert.Contains(_events, e => e.StartsWith($"{EventKind.HostNodeHealthy} host rollout to img-2: node n4 is healthy on host image img-2", StringComparison.Ordinal));
        Assert.Contains(_events, e => e.StartsWith($"{EventKind.HostRolloutCompleted} host rollout to img-2 completed: 4 node(s)", StringComparison.Ordinal));
        Assert.Empty(_goals.For("n4").RebootInto);
    }

    [Fact]
    public async Task Rollout_MaxParallelTwo_WalksTwoNodesOfADomainAtOnce_ButNeverTwoDomains()
    {
        await ClusterAsync();
        await StartAsync(maxParallel: 2);

        await WalkAsync();

        Assert.Equal(HostRolloutPhase.Done, _store.GetHostRollout()!.Phase);
        Assert.Contains(_walking, w => w.Count == 2);
        Assert.All(_walking, w => Assert.True(w.Select(n => n.Split('@')[1]).Distinct().Count() <= 1, string.Join(", ", w)));
    }

    [Fact]
    public async Task Pause_LetsTheNodeBeingWalkedFinish_AndStartsNoOther_UntilResumed()
    {
        await ClusterAsync();
        await StartAsync();
        await WalkAsync(r => r.InProgress.Any(n => n.Stage == HostNodeStage.Rebooting));

        await _control.ActAsync(Heddle.Controller.Api.UpgradeAction.Pause, CancellationToken.None);
        Assert.Equal(HostRolloutPhase.Paused, _store.GetHostRollout()!.Phase);
        await WalkAsync(r => r.InProgress.Count == 0 && r.Done.Count == 1);
        for (var i = 0; i < 30; i++)
        {
            await _runner.StepAsync();
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        var held = _store.GetHostRollout()!;
        Assert.Equal((HostRolloutPhase.Paused, 0), (held.Phase, held.InProgress.Count));
        Assert.Equal(["n2"], held.Done);
        Assert.Equal("img-1", _store.GetMachine("n3")!.HostImage);

        await _control.ActAsync(Heddle.Controller.Api.UpgradeAction.Resume, CancellationToken.None);
        await WalkAsync();
        Assert.Equal(HostRolloutPhase.Done, _store.GetHostRollout()!.Phase);
        Assert.Equal(4, _store.GetHostRollout()!.Done.Count);
        Assert.Contains(_events, e => e.StartsWith(nameof(EventKind.HostRolloutPaused), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Rollback_WalksTheNodesTouchedBackToTheirPreviousImage_LatestFirst_AndLeavesTheOthers()
    {
        await ClusterAsync();
        await StartAsync();
        await WalkAsync(r => r.Done.Count == 2 && r.InProgress.Count == 1);
        Assert.Equal("n1", _store.GetHostRollout()!.InProgress[0].Node);

        await _control.ActAsync(Heddle.Controller.Api.UpgradeAction.Rollback, CancellationToken.None);
        Assert.Equal(HostRolloutPhase.RollingBack, _store.GetHostRollout()!.Phase);
        _events.Clear();
        await WalkAsync();

        var rollout = _store.GetHostRollout()!;
        Assert.Equal((HostRolloutPhase.Done, true), (rollout.Phase, rollout.RollingBack));
        Assert.Equal(["n1", "n3", "n2"], rollout.Order.Select(t => t.Node));
        Assert.Equal(["n1", "n3", "n2"], Started());
        Assert.All(_store.ListMachines(), m => Assert.Equal("img-1", m.HostImage));
        Assert.All(_store.ListNodes(), n => Assert.Equal("img-1", n.HostImage));
        Assert.Contains(_events, e => e.StartsWith($"{EventKind.HostRolloutRolledBack} host rollout to img-2 rolled back (rolled back by a user", StringComparison.Ordinal));
    }

    [Fact]
    public async Task NodeThatDoesNotComeBack_FailsTheRolloutAfterTheBootTimeout_WithTheReason_AndStartsNoOther()
    {
        await ClusterAsync();
        _heldDown.Add("n2");
        await StartAsync();

        await WalkAsync();

        var rollout = _store.GetHostRollout()!;
        Assert.Equal(HostRolloutPhase.Failed, rollout.Phase);
        Assert.Equal("node n2 did not come back on host image img-2 within 10m: it is Ready and reports host image img-1", rollout.Reason);
        Assert.Equal(_time.GetUtcNow(), rollout.Finished);
        Assert.Empty(rollout.Done);
        Assert.Equal("img-1", _store.GetMachine("n3")!.HostImage);
        Assert.Contains(_events, e => e.StartsWith($"{EventKind.HostRolloutFailed} host rollout to img-2 failed: node n2 did not come back", StringComparison.Ordinal));
        Assert.Empty(_goals.For("n2").RebootInto); // a failed rollout tells nobody to reboot any more
    }

    [Fact]
    public async Task MachineRemovedBeforeItsTurn_FailsTheRollout_WithTheReason_AndSetsNoImageOfThatStep()
    {
        await ClusterAsync();
        await StartAsync();
        var last = _store.GetHostRollout()!.Order[^1];
        Assert.NotNull(await _store.RemoveMachineAsync(last.Machine));

        await WalkAsync();

        var rollout = _store.GetHostRollout()!;
        Assert.Equal((HostRolloutPhase.Failed, $"machine {last.Machine} was removed"), (rollout.Phase, rollout.Reason));
        Assert.DoesNotContain(last.Node, rollout.Done);
        Assert.Contains(_events, e => e.StartsWith($"{EventKind.HostRolloutFailed} host rollout to img-2 failed: machine {last.Machine} was removed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AgentThatRefusesToReboot_FailsTheRollout_WithWhatItSaid()
    {
        await ClusterAsync();
        _heldDown.Add("n2");
        await StartAsync();
        await WalkAsync(r => r.InProgress.Any(n => n.Stage == HostNodeStage.Rebooting));

        await _control.RefusedAsync("n2", "this host does not run from a host image (installed otherwise): not rebooting it");
        await WalkAsync();

        var rollout = _store.GetHostRollout()!;
        Assert.Equal(HostRolloutPhase.Failed, rollout.Phase);
        Assert.Equal("node n2 did not reboot: its agent refused (this host does not run from a host image (installed otherwise): not rebooting it)", rollout.Reason);
        Assert.Contains(_events, e => e.StartsWith(nameof(EventKind.HostRebootRefused), StringComparison.Ordinal));
    }

    [Fact]
    public async Task SecondRollout_WhileOneRuns_IsRefusedWithTheReason_AndChangesNothing()
    {
        await ClusterAsync();
        await StartAsync();
        var running = _store.GetHostRollout()!;

        var (rollout, refusal) = HostRolloutPlanner.Plan("img-1", 1, _store.ListHostImages(), _store.ListMachines(), _store.ListNodes(), running, _time.GetUtcNow());

        Assert.Null(rollout);
        Assert.Equal(HostRolloutRefusalKind.Conflict, refusal!.Kind);
        Assert.Equal("a host rollout to img-2 is Running (0 of 4 node(s) done): wait for it to end, or 'heddle hostimage rollout rollback' it, before starting another; nothing was changed",
            refusal.Message);
        Assert.Equal(HostRolloutStartOutcome.AlreadyRunning, await _store.StartHostRolloutAsync(running with { Image = "img-1" }));
        Assert.Equal(running, _store.GetHostRollout());
    }

    [Fact]
    public async Task Plan_UnknownImage_NoMachineOnAHostImage_BadMaxParallel_EachSaysWhatIsWrong()
    {
        var none = HostRolloutPlanner.Plan("img-2", 1, [], [], [], null, _time.GetUtcNow()).Refusal!;
        Assert.Equal((HostRolloutRefusalKind.UnknownImage, "no host image 'img-2'; there are none: 'heddle hostimage build NAME' makes one; nothing was changed"), (none.Kind, none.Message));

        await _store.AddHostImageAsync(new HostImageRecord("img-2", new string('a', 64), 1, new string('b', 64), 1, null, _time.GetUtcNow()));
        var noMachines = HostRolloutPlanner.Plan("img-2", 1, _store.ListHostImages(), [], [], null, _time.GetUtcNow()).Refusal!;
        Assert.StartsWith("no machine boots a host image (0 machine(s) registered)", noMachines.Message);

        var zero = HostRolloutPlanner.Plan("img-2", 0, _store.ListHostImages(), [], [], null, _time.GetUtcNow()).Refusal!;
        Assert.Equal((HostRolloutRefusalKind.Invalid, "--max-parallel 0 is not one: give a number from 1 to 100; nothing was changed"), (zero.Kind, zero.Message));
    }
}
