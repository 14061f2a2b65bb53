using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;
using Heddle.Model.Configuration;

namespace Heddle.Controller.Tests.Upgrades;

/// <summary>The walk as a pure state machine: every step is given its time, so a 10 s gate costs nothing.</summary>
public sealed class UpgradeWalkerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);

    private static UpgradeWalk Walk(UpgradePolicy? policy = null) => new()
    {
        Revision = 2, Previous = 1, Policy = policy ?? UpgradePolicy.Default, Order = [0, 1, 2], Started = T0, PhaseStarted = T0,
    };

    private static InstanceRecord Web(int index, long revision = 1, InstanceState state = InstanceState.Ready, DateTimeOffset? readySince = null) => new()
    {
        Service = "hello", Role = "web", Index = index, UpgradeDomain = index % 3, Node = $"n{index + 1}", Cpus = [index], MemoryMiB = 256,
        Generation = 10 + index, Revision = revision, RunningRevision = revision, State = state, ReadySince = state == InstanceState.Ready ? readySince ?? T0.AddMinutes(-5) : null,
    };

    private static WalkStep Step(UpgradeWalk walk, IReadOnlyList<InstanceRecord> instances, DateTimeOffset now, InstanceChange change = InstanceChange.Restart, bool published = true) =>
        UpgradeWalker.Step(new WalkInput("hello", walk, instances, (i, destination) => i.Revision == destination ? InstanceChange.None : change, now) { Published = () => published });

    [Fact]
    public void Step_FirstDomain_IsDrainedBeforeAnythingRestarts()
    {
        var step = Step(Walk(), [Web(0), Web(1), Web(2)], T0);

        Assert.Equal([new InstanceMark("web", 0, 1, Draining: true)], step.Marks);
        Assert.Empty(step.Restarts);
        Assert.Equal(WalkPhase.Draining, step.Walk.Phase);
        Assert.NotNull(step.RequeueAfter);
    }

    [Fact]
    public void Step_DrainedButNotYetPublished_WaitsThenGoesOnAfterTheLimit()
    {
        var instances = new[] { Web(0) with { Draining = true }, Web(1), Web(2) };

        var waiting = Step(Walk(), instances, T0.AddMilliseconds(100), published: false);
        var stuck = Step(Walk(), instances, T0 + UpgradeWalker.PublishWaitLimit, published: false);

        Assert.Empty(waiting.Restarts);
        Assert.Equal(["hello/web/0"], stuck.Restarts.Select(i => i.Id));
    }

    [Fact]
    public void Step_Drained_RestartsTheDomainAndWaitsForTheGate()
    {
        var step = Step(Walk(), [Web(0) with { Draining = true }, Web(1), Web(2)], T0.AddSeconds(1));

        Assert.Equal(["hello/web/0"], step.Restarts.Select(i => i.Id));
        Assert.Equal(WalkPhase.Updating, step.Walk.Phase);
        Assert.Equal(T0.AddSeconds(1), step.Walk.PhaseStarted);
    }

    [Fact]
    public void Gate_ReadyButNotYetStable_WaitsTheRestOfHealthCheckStable_ThenWalksTheNextDomain()
    {
        var updating = Walk() with { Phase = WalkPhase.Updating, PhaseStarted = T0 };
        var instances = new[] { Web(0, revision: 2, readySince: T0.AddSeconds(2)), Web(1), Web(2) };

        var early = Step(updating, instances, T0.AddSeconds(5));
        var stable = Step(updating, instances, T0.AddSeconds(12));

        Assert.Equal(TimeSpan.FromSeconds(7), early.RequeueAfter);
        Assert.Equal(0, early.Walk.Position);
        Assert.Equal(1, stable.Walk.Position);
        Assert.Equal(WalkPhase.Draining, stable.Walk.Phase);
        Assert.Equal([new InstanceMark("web", 1, 1, Draining: true)], stable.Marks); // domain 1 drains in the same step
        Assert.Contains(stable.Events, e => e.Kind == EventKind.UpgradeDomainHealthy && e.Message.Contains("upgrade domain 0 is healthy"));
    }

    [Fact]
    public void Gate_ReadyAtTheOldRevision_DoesNotCount()
    {
        var updating = Walk() with { Phase = WalkPhase.Updating, PhaseStarted = T0 };
        var reportedOld = Web(0, revision: 2) with { RunningRevision = 1 };

        var step = Step(updating, [reportedOld, Web(1), Web(2)], T0.AddSeconds(30));

        Assert.Equal(0, step.Walk.Position);
        Assert.Equal(WalkPhase.Updating, step.Walk.Phase);
    }

    [Fact]
    public void Gate_AnInstanceFaultsThreeTimes_RollsBackTheWalkedDomainsInReverseOrder()
    {
        var updating = Walk() with { Position = 1, Phase = WalkPhase.Updating, PhaseStarted = T0 };
        var crashing = Web(1, revision: 2, state: InstanceState.Faulted) with
        {
            Restarts = 3, RunningRevision = 2, LastFailure = "exited with code 1", LastStderr = "KeyError: 'PORT'",
        };

        var step = Step(updating, [Web(0, revision: 2), crashing, Web(2)], T0.AddSeconds(40));

        Assert.True(step.Walk.RollingBack);
        Assert.Equal([1, 0], step.Walk.Order);
        Assert.Equal(WalkPhase.Draining, step.Walk.Phase);
        Assert.Equal(1, step.DesiredRevision);
        Assert.Equal("upgrade domain 1: hello/web/1 exited with code 1 three times in 40 s (last stderr line: \"KeyError: 'PORT'\")", step.Walk.Reason);
        Assert.Contains(step.Outcomes, o => o.Revision == 2 && o.Outcome.ToString().StartsWith("RollingBack: upgrade domain 1: hello/web/1 exited with code 1"));
        Assert.Contains(step.Events, e => e.Kind == EventKind.UpgradeDomainFailed);
        Assert.Contains(step.Events, e => e.Kind == EventKind.UpgradeRollingBack);
    }

    [Fact]
    public void Gate_NotHealthyWithinTheDomainTimeout_PausesWhenTheFailureActionIsPause()
    {
        var policy = UpgradePolicy.Default with { FailureAction = UpgradeFailureAction.Pause, UpgradeDomainTimeout = TimeSpan.FromMinutes(1) };
        var updating = Walk(policy) with { Phase = WalkPhase.Updating, PhaseStarted = T0 };
        var starting = Web(0, revision: 2, state: InstanceState.Starting);

        var before = Step(updating, [starting, Web(1), Web(2)], T0.AddSeconds(59));
        var after = Step(updating, [starting, Web(1), Web(2)], T0.AddSeconds(60));

        Assert.Equal(WalkPhase.Updating, before.Walk.Phase);
        Assert.Equal(TimeSpan.FromSeconds(1), before.RequeueAfter);
        Assert.Equal(WalkPhase.Paused, after.Walk.Phase);
        Assert.Equal("upgrade domain 0: not healthy within upgradeDomainTimeout 1m: hello/web/0 is Starting", after.Walk.Reason);
        Assert.Null(after.DesiredRevision);
        Assert.Contains(after.Outcomes, o => o == (2, RevisionOutcome.Paused));
    }

    [Fact]
    public void Step_ManualMode_WaitsAfterEachDomainForResume()
    {
        var updating = Walk(UpgradePolicy.Default with { Mode = UpgradeMode.Manual, HealthCheckStable = TimeSpan.Zero }) with { Phase = WalkPhase.Updating };

        var step = Step(updating, [Web(0, revision: 2), Web(1), Web(2)], T0.AddSeconds(1));
        var later = Step(step.Walk, [Web(0, revision: 2), Web(1), Web(2)], T0.AddHours(1));

        Assert.Equal(WalkPhase.WaitingForResume, step.Walk.Phase);
        Assert.Equal(1, step.Walk.Position);
        Assert.Empty(later.Marks); // nothing moves until a person resumes
        Assert.False(later.Changed);
    }

    [Fact]
    public void Step_SettingsReloadedBySignal_AreNotDrainedOrRestarted()
    {
        var step = Step(Walk(), [Web(0), Web(1), Web(2)], T0, InstanceChange.Signal);

        Assert.Equal([new InstanceMark("web", 0, 2, Draining: false)], step.Marks);
        Assert.Empty(step.Restarts);
        Assert.Equal(WalkPhase.Updating, step.Walk.Phase);
    }

    [Fact]
    public void Step_LastDomainOfARollback_EndsRolledBackWithTheReason()
    {
        var rollingBack = UpgradeWalker.RollBack(Walk() with { Position = 0 }, "upgrade domain 0: boom", T0, []) with { Phase = WalkPhase.Updating };

        var step = Step(rollingBack, [Web(0, revision: 1), Web(1), Web(2)], T0.AddSeconds(11));

        Assert.Equal(WalkPhase.RolledBack, step.Walk.Phase);
        Assert.Contains(step.Outcomes, o => o == (2, new RevisionOutcome(RevisionState.RolledBack, "upgrade domain 0: boom")));
        Assert.Contains(step.Events, e => e.Kind == EventKind.UpgradeRolledBack);
    }

    [Fact]
    public void Step_EveryDomainDone_Completes()
    {
        var last = Walk(UpgradePolicy.Default with { HealthCheckStable = TimeSpan.Zero }) with { Position = 2, Phase = WalkPhase.Updating };

        var step = Step(last, [Web(0, revision: 2), Web(1, revision: 2), Web(2, revision: 2)], T0.AddSeconds(3));

        Assert.Equal(WalkPhase.Completed, step.Walk.Phase);
        Assert.Contains(step.Outcomes, o => o == (2, RevisionOutcome.Completed));
    }

    [Fact]
    public void RollBack_AlsoVisitsDomainsWhereAnInstanceMovedToTheNewRevision()
    {
        var walk = Walk() with { Position = 0 };

        var back = UpgradeWalker.RollBack(walk, "x", T0, [2, 0]);

        Assert.Equal([0, 2], back.Order);
    }
}
