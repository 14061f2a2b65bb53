using Heddle.Contracts.Api;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

public enum UpgradeAction
{
    Pause,
    Resume,
    Rollback,
}

/// <summary>`heddle upgrade status|pause|resume|rollback`: reads and steers the walk stored with a service.</summary>
public sealed class UpgradeControl(IClusterStore store, TimeProvider time)
{
    private const int Attempts = 5;

    internal IResult Status(string name)
    {
        var service = store.GetService(name);
        if (service is null)
        {
            return ApiEndpoints.UnknownService(name, store);
        }

        return service.Walk is { } walk
            ? Results.Ok(Describe(service, walk, store.ListInstances(name), time.GetUtcNow()))
            : Problems.NotFound($"service {name} has had no upgrade: a deploy that changes its package or settings starts one");
    }

    internal async Task<IResult> ActAsync(string name, UpgradeAction action)
    {
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            var service = store.GetService(name);
            if (service is null || service.Deleting)
            {
                return ApiEndpoints.UnknownService(name, store);
            }

            if (service.Walk is not { IsFinished: false } walk)
            {
                var last = service.Walk is { } done ? $" (the last one, to revision {done.Revision}, is {done.Outcome})" : string.Empty;
                return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "No upgrade in progress", $"service {name} has no upgrade in progress{last}; nothing to {action.ToString().ToLowerInvariant()}");
            }

            var now = time.GetUtcNow();
            var (next, desired, message, refusal) = action switch
            {
                UpgradeAction.Pause => walk.PausedByUser || walk.Phase is WalkPhase.Paused or WalkPhase.WaitingForResume
                    ? (walk, (long?)null, string.Empty, $"the upgrade to revision {walk.Revision} is already paused ({walk.Outcome})")
                    : (walk with { PausedByUser = true }, null, $"upgrade to revision {walk.Revision} paused by a user; 'heddle upgrade resume {name}' carries on", null),
                UpgradeAction.Resume => Resume(walk, now) is { } resumed
                    ? (resumed, null, $"upgrade to revision {walk.Revision} resumed by a user", null)
                    : (walk, null, string.Empty, $"the upgrade to revision {walk.Revision} is not paused ({walk.Outcome})"),
                _ => walk.RollingBack
                    ? (walk, null, string.Empty, $"the upgrade to revision {walk.Revision} is already rolling back to revision {walk.Previous}")
                    : (UpgradeWalker.RollBack(walk, "rolled back by a user ('heddle upgrade rollback')", now,
                        store.ListInstances(name).Where(i => i.Revision == walk.Revision).Select(i => i.UpgradeDomain).Distinct()), walk.Previous,
                        $"upgrade to revision {walk.Revision} is rolling back to revision {walk.Previous}: asked by a user", null),
            };
            if (refusal is not null)
            {
                return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Cannot " + action.ToString().ToLowerInvariant(), refusal);
            }

            // A pause while a domain drains puts its instances back into rotation: they are not stopped until the walk resumes
            // (which drains them again).
            var undrain = action == UpgradeAction.Pause && walk.Phase == WalkPhase.Draining
                ? store.ListInstances(name).Where(i => i.Draining && i.UpgradeDomain == walk.CurrentDomain && i.Revision == walk.Source)
                    .Select(i => new InstanceMark(i.Role, i.Index, i.Revision, Draining: false)).ToList()
                : [];
            var kind = action switch { UpgradeAction.Pause => EventKind.UpgradePaused, UpgradeAction.Resume => EventKind.UpgradeResumed, _ => EventKind.UpgradeRollingBack };
            var commit = new PlacementCommit(name, service.Version, [], [])
            {
                Walk = new WalkChange(next), DesiredRevision = desired, Outcomes = [(walk.Revision, next.Outcome)], Marks = undrain,
                Events = [new NewEvent(kind, name, message, EventOwner.Of(service))],
            };
            if (!await store.CommitPlacementAsync(commit))
            {
                continue;
            }

            var after = store.GetService(name)!;
            return Results.Ok(Describe(after, after.Walk!, store.ListInstances(name), now));
        }

        return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Changed meanwhile", $"the upgrade of {name} kept changing; try again");
    }

    /// <summary>A paused walk carries on: after a manual-mode stop with the next domain; after a failure, with a fresh gate for the failed domain.</summary>
    private static UpgradeWalk? Resume(UpgradeWalk walk, DateTimeOffset now) => walk switch
    {
        { Phase: WalkPhase.WaitingForResume } => walk with { Phase = WalkPhase.Draining, PhaseStarted = now, PausedByUser = false },
        { Phase: WalkPhase.Paused } => walk with { Phase = WalkPhase.Updating, PhaseStarted = now, PausedByUser = false },
        { PausedByUser: true } => walk with { PausedByUser = false, PhaseStarted = now },
        _ => null,
    };

    public static string StateOf(UpgradeWalk walk) => walk.Phase switch
    {
        WalkPhase.Completed => UpgradeStates.Completed,
        WalkPhase.RolledBack => UpgradeStates.RolledBack,
        WalkPhase.WaitingForResume => UpgradeStates.WaitingForResume,
        WalkPhase.Paused => UpgradeStates.Paused,
        _ when walk.PausedByUser => UpgradeStates.Paused,
        _ when walk.RollingBack => UpgradeStates.RollingBack,
        _ => UpgradeStates.InProgress,
    };

    public static UpgradeStatus Describe(ServiceRecord service, UpgradeWalk walk, IReadOnlyList<InstanceRecord> instances, DateTimeOffset now)
    {
        var domains = new List<UpgradeDomainStatus>();
        var count = Math.Max(walk.Order.Count == 0 ? 0 : walk.Order.Max() + 1, instances.Count == 0 ? 0 : instances.Max(i => i.UpgradeDomain) + 1);
        foreach (var domain in walk.Order.Concat(Enumerable.Range(0, count).Where(d => !walk.Order.Contains(d))))
        {
            var position = walk.Order.ToList().IndexOf(domain);
            var state = position < 0 ? "Skipped"
                : walk.IsFinished || position < walk.Position ? "Done"
                : position > walk.Position ? "Pending"
                : walk.Phase switch { WalkPhase.Draining => "Draining", WalkPhase.WaitingForResume => "Pending", WalkPhase.Paused => "Failed", _ => "Updating" };
            domains.Add(new UpgradeDomainStatus(domain, state, [.. instances.Where(i => i.UpgradeDomain == domain)
                .Select(i => new UpgradeInstanceStatus(i.Id, i.State.ToString(), i.Revision, i.RunningRevision, i.Draining))]));
        }

        double? gate = null;
        if (walk is { Phase: WalkPhase.Updating, CurrentDomain: { } current })
        {
            var members = instances.Where(i => i.UpgradeDomain == current && i.Revision == walk.Destination).ToList();
            if (members.Count > 0 && members.All(i => i.State == InstanceState.Ready && i.ReadySince is not null && i.RunningRevision == walk.Destination))
            {
                gate = Math.Max(0, (members.Max(i => i.ReadySince!.Value) + walk.Policy.HealthCheckStable - now).TotalSeconds);
            }
        }

        return new UpgradeStatus
        {
            Service = service.Name,
            Revision = walk.Revision,
            Previous = walk.Previous,
            State = StateOf(walk),
            Reason = walk.Reason,
            Mode = walk.Policy.Mode.ToString().ToLowerInvariant(),
            FailureAction = walk.Policy.FailureAction.ToString().ToLowerInvariant(),
            HealthCheckStableSeconds = walk.Policy.HealthCheckStable.TotalSeconds,
            UpgradeDomainTimeoutSeconds = walk.Policy.UpgradeDomainTimeout.TotalSeconds,
            CurrentDomain = walk.CurrentDomain,
            Phase = walk.IsFinished ? null : walk.Phase.ToString(),
            GateRemainingSeconds = gate,
            Started = walk.Started,
            Finished = walk.Finished,
            Domains = domains,
        };
    }
}
