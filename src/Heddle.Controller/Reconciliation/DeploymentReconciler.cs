using Heddle.Contracts.Api;
using Heddle.Controller.Agents;
using Heddle.Controller.Publishing;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// Drives one service toward its deployment, level-based: it reads the service, every node and every instance
/// fresh and, in one pass, relabels instances whose revision changed in nothing they run, takes the upgrade walk one
/// step, plans placements, and commits all of it in one transaction guarded by the service's version (a pass from a
/// stale read is dropped and retried, never half-applied), with the events that tell of it. The change feed sends the
/// agents their goal states (<see cref="ChangeDispatcher"/>). Running it twice changes nothing.
/// </summary>
public sealed partial class DeploymentReconciler(
    IClusterStore store, ServiceModels models, EventLog events, ControllerOptions options, IPublicationBarrier publication,
    TimeProvider time, ILogger<DeploymentReconciler> logger, Leadership.LeaderTerm? term = null, Metrics.ControllerMetrics? metrics = null,
    IHostRolloutStore? hostRollouts = null)
{
    /// <summary>This controller's term, as a condition of its commits (no term: the embedded store's one controller).</summary>
    private (string Key, long Revision)? Fence => term?.Fence;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _lastFailure = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<string>> _unplaced = new(StringComparer.Ordinal);

    /// <summary>
    /// Why each instance the last pass could not place stays unplaced ("hello/web/3: 3 nodes: 3 too few free CPUs"),
    /// for `heddle status`; empty when everything is placed.
    /// </summary>
    public IReadOnlyList<string> Unplaced(string service) => _unplaced.GetValueOrDefault(service) ?? [];

    /// <summary>The services whose last pass left an instance unplaced (on a follower, which runs no passes: none).</summary>
    public IEnumerable<string> WaitingForRoom() => _unplaced.Where(u => u.Value.Count > 0).Select(u => u.Key);
    private readonly PlacementPlanner _planner = new(store, options, time);

    /// <summary>How many times the allocator's view of the whole cluster was built (a pass of one service does not).</summary>
    internal int ClusterBuilds => _planner.ClusterBuilds;

    /// <summary>
    /// Passes of different services may run at once (<see cref="ReconcileLoop"/>), but they read and plan one at a time,
    /// each on the view the one before left: only their commits overlap (and the store writes those that arrive together
    /// in one transaction). A pass holds the turn from its first read until its commit is on its way.
    /// </summary>
    private readonly SemaphoreSlim _planning = new(1, 1);

    public async Task<ReconcileResult> ReconcileAsync(string serviceName, CancellationToken cancellationToken = default)
    {
        await _planning.WaitAsync(cancellationToken);
        using var turn = new Turn(_planning);
        var service = store.GetService(serviceName);
        if (service is null)
        {
            return ReconcileResult.Done;
        }

        if (service is { Uid: 0, Deleting: false })
        {
            // Written by an earlier controller, when each agent chose uids: a uid of the cluster's own before anything is placed.
            if (await Api.ServiceUids.EnsureAsync(store, service, options.UidRange, cancellationToken) is null)
            {
                await events.AddAsync(EventKind.PlacementFailed, serviceName, Api.ServiceUids.Exhausted(options.UidRange));
                return ReconcileResult.After(TimeSpan.FromSeconds(30));
            }

            service = store.GetService(serviceName) ?? service;
        }

        var nodes = store.ListNodes();
        var ready = ReadyOf(nodes);
        var mine = store.ListInstances(serviceName);
        if (service.Deleting)
        {
            turn.Dispose(); // places nothing
            return await ReconcileDeletionAsync(service, mine, ready, cancellationToken);
        }

        var revisions = new RevisionModels(store, models, serviceName);
        var pass = new ServicePass(service, mine);
        bool? published = null;
        bool Published() => published ??= publication.Published();
        var desired = service.Revision;
        foreach (var instance in pass.Instances.Where(i => i.Revision != desired && revisions.ChangeOf(i, desired) == InstanceChange.None))
        {
            pass.Mark(instance, desired, instance.Draining);
        }

        if (service.Walk is { IsFinished: false } walk)
        {
            desired = StepWalk(pass, walk, revisions, Published);
        }

        if (revisions.Get(desired)?.Model is not { } model)
        {
            LogUnreadable(logger, serviceName, desired);
            return ReconcileResult.Done;
        }

        var unplaced = new List<Placement.Explanation>();
        var failures = _planner.Plan(pass, model, desired, nodes, ready, Published, unplaced, HostEvacuation.Of(hostRollouts?.GetHostRollout(), ready));
        foreach (var why in unplaced)
        {
            metrics?.Unplaced(why);
        }

        if (service.Walk is not { IsFinished: false } && revisions.Get(desired)?.Record.Outcome == RevisionOutcome.InProgress && model.AllReadyAt(pass.Instances, desired))
        {
            pass.Outcome(desired, RevisionOutcome.Completed);
        }

        var commit = pass.Commit();
        if (commit.IsEmpty)
        {
            turn.Dispose();
            await ReportFailuresAsync(service, failures);
            return pass.Result;
        }

        // The next pass may plan while this one commits: it sees this pass's placements until the commit has landed or failed.
        _planner.Committing(serviceName, service.Tenant, pass.Instances);
        turn.Dispose();
        var owner = EventOwner.Of(service);
        var told = pass.Events.Select(e => new NewEvent(e.Kind, e.Subject, e.Message, owner)).ToList();
        try
        {
            if (!await store.CommitPlacementAsync(await WithGenerationAsync(commit, cancellationToken) with { Fence = Fence, Events = told, Source = ChangeSource.Reconciler },
                    cancellationToken))
            {
                return ReconcileResult.Retry;
            }
        }
        finally
        {
            _planner.Committed(serviceName);
        }

        metrics?.Placed(pass.Events.Count(e => e.Kind is EventKind.InstancePlaced or EventKind.InstanceMoved));
        if (service.Walk is { } walkBefore && commit.Walk is { } walkChange)
        {
            metrics?.Walked(walkBefore, walkChange.Walk);
        }

        await ReportFailuresAsync(service, failures);
        return pass.Result;
    }

    /// <summary>
    /// Gives the instances this pass starts afresh one new generation (a number no run of them had, from the store):
    /// one store round trip per pass however many instances it places.
    /// </summary>
    private async Task<PlacementCommit> WithGenerationAsync(PlacementCommit commit, CancellationToken cancellationToken)
    {
        if (!commit.Upserts.Any(u => u.Generation == ServicePass.NewRun))
        {
            return commit;
        }

        var generation = await store.NextGenerationAsync(cancellationToken);
        return commit with { Upserts = [.. commit.Upserts.Select(u => u.Generation == ServicePass.NewRun ? u with { Generation = generation } : u)] };
    }

    /// <summary>Takes the walk one step; returns the desired revision after it (a rollback changes it).</summary>
    private long StepWalk(ServicePass pass, UpgradeWalk walk, RevisionModels revisions, Func<bool> published)
    {
        var step = UpgradeWalker.Step(new WalkInput(pass.Service.Name, walk, pass.Instances, revisions.ChangeOf, time.GetUtcNow())
        {
            Published = published,
        });
        foreach (var mark in step.Marks)
        {
            pass.Mark(pass.Find(mark.Role, mark.Index), mark.Revision, mark.Draining);
        }

        foreach (var instance in step.Restarts)
        {
            pass.Restart(instance, step.Walk.Destination);
        }

        foreach (var instance in step.Replacements)
        {
            pass.Remove(instance.Role, instance.Index);
        }

        foreach (var (revision, outcome) in step.Outcomes)
        {
            pass.Outcome(revision, outcome);
        }

        if (step.Changed)
        {
            pass.SetWalk(step.Walk);
        }

        if (step.DesiredRevision is { } rollback)
        {
            pass.SetDesired(rollback);
        }

        pass.Events.AddRange(step.Events);
        pass.Requeue(step.RequeueAfter);
        return step.DesiredRevision ?? pass.Service.Revision;
    }

    /// <summary>The names of the Ready nodes, made again only when the store lists nodes anew (after a node changed), not on every pass.</summary>
    private IReadOnlySet<string> ReadyOf(IReadOnlyList<NodeRecord> nodes)
    {
        if (_ready is { } known && ReferenceEquals(known.Nodes, nodes))
        {
            return known.Ready;
        }

        var ready = nodes.Where(n => n.Condition == NodeCondition.Ready).Select(n => n.Name).ToHashSet(StringComparer.Ordinal);
        _ready = new ReadyNodes(nodes, ready);
        return ready;
    }

    private volatile ReadyNodes? _ready;

    private sealed record ReadyNodes(IReadOnlyList<NodeRecord> Nodes, IReadOnlySet<string> Ready);

    private async Task<ReconcileResult> ReconcileDeletionAsync(ServiceRecord service, IReadOnlyList<InstanceRecord> instances, IReadOnlySet<string> ready, CancellationToken cancellationToken)
    {
        // Stopped instances are gone, and so are Pending ones no agent has reported on: a service deleted right after
        // it was placed may never reach an agent's goal state, and then nothing would ever report them Stopped (an
        // agent that did start one stops it all the same: its goal no longer has it). Instances on nodes that cannot
        // answer are forgotten: a node that returns is told to stop what it no longer owns.
        var gone = instances.Where(i => i.State is InstanceState.Stopped or InstanceState.Pending || !ready.Contains(i.Node)).Select(i => (i.Role, i.Index)).ToList();
        if (gone.Count > 0 && !await store.CommitPlacementAsync(new PlacementCommit(service.Name, service.Version, [], gone) { Fence = Fence, Source = ChangeSource.Reconciler },
                cancellationToken))
        {
            return ReconcileResult.Retry;
        }

        if (instances.Count == gone.Count)
        {
            await store.RemoveServiceAsync(service.Name, cancellationToken, new NewEvent(EventKind.ServiceDeleted, service.Name, "deleted: every instance has stopped", EventOwner.Of(service)));
            return ReconcileResult.Done;
        }

        // The agents say when the rest have stopped (their goal states lost the service when it was marked); looked at
        // again soon all the same (a report may have gone to a controller that lost its term, or to none while the store was away).
        return ReconcileResult.After(TimeSpan.FromSeconds(1));
    }

    private async Task ReportFailuresAsync(ServiceRecord record, List<string> failures)
    {
        var service = record.Name;
        var text = string.Join("; ", failures);
        _unplaced[service] = [.. failures];
        if (_lastFailure.GetValueOrDefault(service, string.Empty) == text)
        {
            return;
        }

        _lastFailure[service] = text;
        if (failures.Count > 0)
        {
            await events.AddAsync(EventKind.PlacementFailed, service, $"{failures.Count} instance(s) cannot be placed: {text}", EventOwner.Of(record));
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Service {Service} has a revision ({Revision}) whose package or configuration cannot be read; it is left as it is")]
    private static partial void LogUnreadable(ILogger logger, string service, long revision);
}
