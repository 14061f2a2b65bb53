using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Model.Configuration;
using Heddle.Model.Validation;

namespace Heddle.Controller.Upgrades;

/// <summary>What one step of a walk sees: the walk, the service's instances now, and whether the data planes have caught up.</summary>
public sealed record WalkInput(string Service, UpgradeWalk Walk, IReadOnlyList<InstanceRecord> Instances, Func<InstanceRecord, long, InstanceChange> ChangeOf, DateTimeOffset Now)
{
    /// <summary>Whether every load balancer and DNS server following the controller has been sent a view without the draining instances (asked only when needed: it rebuilds both views).</summary>
    public Func<bool> Published { get; init; } = () => true;
}

/// <summary>What one step decides; the reconciler commits it in one transaction.</summary>
public sealed class WalkStep
{
    public required string Service { get; init; }

    public required UpgradeWalk Walk { get; set; }

    public bool Changed { get; set; }

    /// <summary>Instances relabelled to the destination (settings reloaded by signal, or nothing to change) or taken out of rotation.</summary>
    public List<InstanceMark> Marks { get; } = [];

    /// <summary>Instances to start afresh where they are, at the destination revision.</summary>
    public List<InstanceRecord> Restarts { get; } = [];

    /// <summary>Instances to release and place again (their size changed).</summary>
    public List<InstanceRecord> Replacements { get; } = [];

    public List<(long Revision, RevisionOutcome Outcome)> Outcomes { get; } = [];

    /// <summary>Set when the service's desired revision changes (a rollback makes the previous one desired again).</summary>
    public long? DesiredRevision { get; set; }

    public List<(EventKind Kind, string Subject, string Message)> Events { get; } = [];

    public TimeSpan? RequeueAfter { get; set; }
}

/// <summary>
/// The upgrade walk as a pure state machine: given the stored walk and the instances, it decides the next step.
/// For the current upgrade domain: take the instances that will restart out of the load balancer and DNS
/// (<see cref="WalkPhase.Draining"/>), once every data plane has been told restart them at the destination revision
/// and relabel or signal the rest (<see cref="WalkPhase.Updating"/>), then wait for the health gate: every instance of
/// the domain Ready at the destination, and staying Ready for healthCheckStable. A domain with an instance that keeps
/// faulting, or not healthy within upgradeDomainTimeout, fails the walk: it rolls back through the domains already
/// walked, in reverse order and with the same gate, or pauses for a person. No clock is read and nothing is written
/// here, so every path is tested with a fake clock.
/// </summary>
public static class UpgradeWalker
{
    /// <summary>An upgraded instance that has faulted this many times fails its domain.</summary>
    public const int FaultsBeforeFailing = 3;

    /// <summary>How often a step that waits for the data planes looks again.</summary>
    public static readonly TimeSpan PublishPoll = TimeSpan.FromMilliseconds(20);

    /// <summary>A data plane that has not taken a view this long (a stuck follower) does not hold the walk up any longer.</summary>
    public static readonly TimeSpan PublishWaitLimit = TimeSpan.FromSeconds(5);

    public static WalkStep Step(WalkInput input)
    {
        var step = new WalkStep { Service = input.Service, Walk = input.Walk };
        // A few transitions can follow each other in one step (a domain with nothing to change is done at once).
        for (var i = 0; i < 2 * (input.Walk.Order.Count + 2); i++)
        {
            var walk = step.Walk;
            if (walk.IsFinished || walk.PausedByUser || walk.Phase is WalkPhase.Paused or WalkPhase.WaitingForResume)
            {
                return step;
            }

            if (walk.CurrentDomain is not { } domain)
            {
                Finish(step, input.Now);
                return step;
            }

            var advanced = walk.Phase == WalkPhase.Draining ? Drain(step, input, domain) : Gate(step, input, domain);
            if (!advanced)
            {
                return step;
            }
        }

        return step;
    }

    /// <summary>Draining: returns true when the walk moved on to another phase or domain in this step.</summary>
    private static bool Drain(WalkStep step, WalkInput input, int domain)
    {
        var walk = step.Walk;
        var pending = input.Instances
            .Where(i => i.UpgradeDomain == domain && i.Revision != walk.Destination)
            .Select(i => (Instance: i, Change: input.ChangeOf(i, walk.Destination)))
            .Where(p => p.Change != InstanceChange.Gone)
            .ToList();
        if (pending.Count == 0)
        {
            DomainDone(step, input.Now, domain, $"upgrade domain {domain}: nothing to change");
            return true;
        }

        var stopping = pending.Where(p => p.Change is InstanceChange.Restart or InstanceChange.Replace).Select(p => p.Instance).ToList();
        var undrained = stopping.Where(i => !i.Draining).ToList();
        if (undrained.Count > 0)
        {
            step.Marks.AddRange(undrained.Select(i => new InstanceMark(i.Role, i.Index, i.Revision, Draining: true)));
            if (undrained.Count == stopping.Count)
            {
                step.Events.Add((EventKind.UpgradeDomainStarted, step.Service,
                    $"{Direction(walk)}: upgrade domain {domain} started: {string.Join(", ", stopping.Select(i => i.Id))} out of the load balancer and DNS, draining"));
            }

            step.Changed = true;
            step.RequeueAfter = PublishPoll;
            return false;
        }

        if (input.Now - walk.PhaseStarted < PublishWaitLimit && !input.Published())
        {
            step.RequeueAfter = PublishPoll;
            return false;
        }

        foreach (var (instance, change) in pending)
        {
            switch (change)
            {
                case InstanceChange.None or InstanceChange.Signal:
                    step.Marks.Add(new InstanceMark(instance.Role, instance.Index, walk.Destination, Draining: false));
                    break;
                case InstanceChange.Restart:
                    step.Restarts.Add(instance);
                    break;
                case InstanceChange.Replace:
                    step.Replacements.Add(instance);
                    break;
            }
        }

        var signalled = pending.Where(p => p.Change == InstanceChange.Signal).Select(p => p.Instance.Id).ToList();
        var what = new List<string>();
        if (stopping.Count > 0)
        {
            what.Add($"restarting {string.Join(", ", stopping.Select(i => i.Id))}");
        }

        if (signalled.Count > 0)
        {
            what.Add($"signalling {string.Join(", ", signalled)} to reload their settings");
        }

        step.Events.Add((EventKind.UpgradeDomainUpdating, step.Service, $"{Direction(walk)}: upgrade domain {domain}: {string.Join("; ", what.DefaultIfEmpty("relabelling its instances"))} at revision {walk.Destination}"));
        step.Walk = walk with { Phase = WalkPhase.Updating, PhaseStarted = input.Now };
        step.Changed = true;
        step.RequeueAfter = PublishPoll;
        return false;
    }

    /// <summary>The health gate of the domain being updated: returns true when the domain passed (or failed) in this step.</summary>
    private static bool Gate(WalkStep step, WalkInput input, int domain)
    {
        var walk = step.Walk;
        var members = input.Instances.Where(i => i.UpgradeDomain == domain && i.Revision == walk.Destination).ToList();
        var faulting = members.FirstOrDefault(i => i.State == InstanceState.Faulted && i.Restarts >= FaultsBeforeFailing);
        if (faulting is not null)
        {
            Fail(step, input, domain, Describe(faulting, input.Now - walk.PhaseStarted));
            return true;
        }

        var timeout = walk.Policy.UpgradeDomainTimeout;
        var healthy = members.All(i => i.State == InstanceState.Ready && i.RunningRevision == walk.Destination && i.ReadySince is not null && !i.Draining);
        if (!healthy)
        {
            if (input.Now - walk.PhaseStarted >= timeout)
            {
                var laggard = members.FirstOrDefault(i => i.State != InstanceState.Ready || i.RunningRevision != walk.Destination);
                var why = laggard is null ? "its instances did not stay Ready" : $"{laggard.Id} is {laggard.State}{(laggard.Reason is { } r ? $" ({r})" : string.Empty)}";
                Fail(step, input, domain, $"not healthy within upgradeDomainTimeout {DurationText.Format(timeout)}: {why}");
                return true;
            }

            step.RequeueAfter = walk.PhaseStarted + timeout - input.Now;
            return false;
        }

        var stableAt = members.Count == 0 ? input.Now : members.Max(i => i.ReadySince!.Value) + walk.Policy.HealthCheckStable;
        if (input.Now < stableAt)
        {
            step.RequeueAfter = stableAt - input.Now;
            return false;
        }

        DomainDone(step, input.Now, domain, $"upgrade domain {domain} is healthy: {members.Count} instance(s) Ready at revision {walk.Destination}"
            + (walk.Policy.HealthCheckStable > TimeSpan.Zero ? $" for {DurationText.Format(walk.Policy.HealthCheckStable)}" : string.Empty));
        return true;
    }

    private static void DomainDone(WalkStep step, DateTimeOffset now, int domain, string message)
    {
        var walk = step.Walk;
        step.Events.Add((EventKind.UpgradeDomainHealthy, step.Service, $"{Direction(walk)}: {message}"));
        var next = walk.Position + 1;
        step.Changed = true;
        if (next >= walk.Order.Count)
        {
            step.Walk = walk with { Position = next };
            Finish(step, now);
            return;
        }

        if (walk.Policy.Mode == UpgradeMode.Manual && !walk.RollingBack)
        {
            step.Walk = walk with { Position = next, Phase = WalkPhase.WaitingForResume, PhaseStarted = now };
            step.Outcomes.Add((walk.Revision, step.Walk.Outcome));
            step.Events.Add((EventKind.UpgradePaused, step.Service,
                $"upgrade to revision {walk.Revision}: waiting after upgrade domain {domain} (manual mode); run 'heddle upgrade resume {step.Service}' to walk upgrade domain {walk.Order[next]}"));
            return;
        }

        step.Walk = walk with { Position = next, Phase = WalkPhase.Draining, PhaseStarted = now };
    }

    private static void Finish(WalkStep step, DateTimeOffset now)
    {
        var walk = step.Walk;
        step.Walk = walk with { Phase = walk.RollingBack ? WalkPhase.RolledBack : WalkPhase.Completed, Finished = now, PhaseStarted = now };
        step.Changed = true;
        step.Outcomes.Add((walk.Revision, step.Walk.Outcome));
        step.Events.Add(walk.RollingBack
            ? (EventKind.UpgradeRolledBack, step.Service, $"upgrade to revision {walk.Revision} rolled back: {walk.Reason}; revision {walk.Previous} runs everywhere")
            : (EventKind.UpgradeCompleted, step.Service, $"upgrade to revision {walk.Revision} completed in {(now - walk.Started).TotalSeconds:0.0} s"));
    }

    private static void Fail(WalkStep step, WalkInput input, int domain, string problem)
    {
        var walk = step.Walk;
        var now = input.Now;
        var reason = $"upgrade domain {domain}: {problem}";
        step.Changed = true;
        step.Events.Add((EventKind.UpgradeDomainFailed, step.Service, $"{Direction(walk)}: {reason}"));
        if (!walk.RollingBack && walk.Policy.FailureAction == UpgradeFailureAction.Rollback)
        {
            step.Walk = RollBack(walk, reason, now, input.Instances.Where(i => i.Revision == walk.Revision).Select(i => i.UpgradeDomain).Distinct());
            step.DesiredRevision = walk.Previous;
            step.Outcomes.Add((walk.Revision, step.Walk.Outcome));
            step.Events.Add((EventKind.UpgradeRollingBack, step.Service,
                $"upgrade to revision {walk.Revision} is rolling back to revision {walk.Previous} (upgrade domains {string.Join(", ", step.Walk.Order)}): {reason}"));
            return;
        }

        var paused = walk.RollingBack ? $"rollback to revision {walk.Previous} failed: {reason}" : reason;
        step.Walk = walk with { Phase = WalkPhase.Paused, Reason = paused, PhaseStarted = now };
        step.Outcomes.Add((walk.Revision, step.Walk.Outcome));
        step.Events.Add((EventKind.UpgradePaused, step.Service,
            $"upgrade to revision {walk.Revision} paused: {paused}; run 'heddle upgrade resume {step.Service}' to try the domain again or 'heddle upgrade rollback {step.Service}'"));
    }

    /// <summary>
    /// The walk back to the previous revision: the domains already walked (the current one included) in reverse
    /// order, then any other domain holding an instance of the new revision (one that moved during the upgrade).
    /// </summary>
    public static UpgradeWalk RollBack(UpgradeWalk walk, string reason, DateTimeOffset now, IEnumerable<int> otherDomains)
    {
        var walked = walk.Order.Take(Math.Min(walk.Position + 1, walk.Order.Count)).Reverse().ToList();
        var order = walked.Concat(otherDomains.Where(d => !walked.Contains(d)).Order()).ToList();
        var all = order.Count == 0 ? walk.Order.Reverse().ToList() : order;
        return walk with
        {
            RollingBack = true, Reason = reason, Order = all, Position = 0, Phase = WalkPhase.Draining, PhaseStarted = now, PausedByUser = false,
        };
    }

    /// <summary>"hello/web/1 exited with code 1 3 times in 4.2 s (last stderr line: "...")".</summary>
    private static string Describe(InstanceRecord instance, TimeSpan since)
    {
        var failure = instance.LastFailure ?? instance.Reason ?? "faulted";
        var stderr = string.IsNullOrEmpty(instance.LastStderr) ? string.Empty : $" (last stderr line: \"{instance.LastStderr}\")";
        return $"{instance.Id} {failure} {Times(instance.Restarts)} in {Math.Max(0, since.TotalSeconds):0} s{stderr}";
    }

    private static string Times(int n) => n switch { 1 => "once", 2 => "twice", 3 => "three times", 4 => "four times", 5 => "five times", _ => $"{n} times" };

    private static string Direction(UpgradeWalk walk) => walk.RollingBack ? $"rollback to revision {walk.Previous}" : $"upgrade to revision {walk.Revision}";
}
