using Heddle.Contracts.Api;
using Heddle.Controller.Api;
using Heddle.Controller.Store;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.HostRollouts;

/// <summary>
/// `heddle hostimage rollout NAME|status|pause|resume|rollback` (admin only): starts, reads and steers the host rollout
/// the leader's <see cref="HostRolloutRunner"/> walks; and an agent's refusal to reboot, noted on its node's step.
/// A request that cannot be done says why and changes nothing.
/// </summary>
public sealed class HostRolloutControl(IHostRolloutStore rollouts, IMachineStore machines, IClusterStore store, EventLog events, HostRolloutRunner runner, TimeProvider time)
{
    private const int Attempts = 5;

    internal async Task<IResult> StartAsync(HostRolloutRequest? request, CancellationToken cancellationToken)
    {
        if (request is null || string.IsNullOrEmpty(request.Image))
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad host rollout", "the request names no host image; send {\"image\": NAME, \"maxParallel\": 1}; nothing was changed");
        }

        var (rollout, refusal) = HostRolloutPlanner.Plan(request.Image, request.MaxParallel, machines.ListHostImages(), machines.ListMachines(), store.ListNodes(),
            rollouts.GetHostRollout(), time.GetUtcNow());
        if (refusal is not null)
        {
            return Refused(refusal);
        }

        if (await rollouts.StartHostRolloutAsync(rollout!, cancellationToken) != HostRolloutStartOutcome.Started)
        {
            return Refused(HostRolloutPlanner.Plan(request.Image, request.MaxParallel, machines.ListHostImages(), machines.ListMachines(), store.ListNodes(),
                rollouts.GetHostRollout(), time.GetUtcNow()).Refusal ?? new(HostRolloutRefusalKind.Conflict, "another host rollout started at the same time; nothing was changed"));
        }

        await events.AddAsync(EventKind.HostRolloutStarted, rollout!.Image,
            $"host rollout to {rollout.Image} started: {rollout.Order.Count} node(s), at most {rollout.MaxParallel} at a time, in upgrade-domain order: "
            + string.Join(", ", rollout.Order.Select(t => $"{t.Node} ({t.Domain})")), cancellationToken: cancellationToken);
        runner.Wake();
        return Results.Ok(Describe(rollouts.GetHostRollout()!));
    }

    internal IResult Status() => rollouts.GetHostRollout() is { } rollout
        ? Results.Ok(Describe(rollout))
        : Problems.NotFound("there has been no host rollout: 'heddle hostimage rollout IMAGE' starts one");

    internal async Task<IResult> ActAsync(Api.UpgradeAction action, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            var rollout = rollouts.GetHostRollout();
            var verb = action.ToString().ToLowerInvariant();
            if (rollout is null || rollout.IsFinished && !(action == Api.UpgradeAction.Rollback && rollout is { Phase: HostRolloutPhase.Failed, RollingBack: false }))
            {
                var last = rollout is null ? string.Empty : $" (the last one, to {rollout.Image}, is {rollout.Phase}{(rollout.Reason is { } r ? $": {r}" : string.Empty)})";
                return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "No host rollout in progress", $"no host rollout is in progress{last}; nothing to {verb}");
            }

            var now = time.GetUtcNow();
            var (next, message, refusal) = action switch
            {
                Api.UpgradeAction.Pause => rollout.Phase == HostRolloutPhase.Paused
                    ? (rollout, string.Empty, "it is already paused")
                    : (rollout with { Phase = HostRolloutPhase.Paused }, $"host rollout to {rollout.Image} paused by a user: the nodes being walked ({Nodes(rollout)}) finish, no other starts", null),
                Api.UpgradeAction.Resume => rollout.Phase != HostRolloutPhase.Paused
                    ? (rollout, string.Empty, $"it is not paused ({rollout.Phase})")
                    : (rollout with { Phase = rollout.RollingBack ? HostRolloutPhase.RollingBack : HostRolloutPhase.Running }, $"host rollout to {rollout.Image} resumed by a user", null),
                _ => rollout.RollingBack
                    ? (rollout, string.Empty, "it is already rolling back")
                    : (HostRolloutWalker.RollBack(rollout, "rolled back by a user ('heddle hostimage rollout rollback')", now),
                        $"host rollout to {rollout.Image} is rolling back: the nodes walked ({Nodes(rollout)}) boot their previous image again", null),
            };
            if (refusal is not null)
            {
                return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, $"Cannot {verb}", $"host rollout to {rollout.Image}: {refusal}; nothing was changed");
            }

            if (await rollouts.UpdateHostRolloutAsync(next, cancellationToken))
            {
                var kind = action switch
                {
                    Api.UpgradeAction.Pause => EventKind.HostRolloutPaused,
                    Api.UpgradeAction.Resume => EventKind.HostRolloutResumed,
                    _ => EventKind.HostRolloutRollingBack,
                };
                await events.AddAsync(kind, rollout.Image, message, cancellationToken: cancellationToken);
                runner.Wake();
                return Results.Ok(Describe(rollouts.GetHostRollout()!));
            }
        }

        return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Host rollout busy", $"the host rollout changed under {Attempts} attempts in a row; try again");
    }

    /// <summary>An agent said it will not reboot (it does not run from a host image): noted on its node's step, which fails the rollout.</summary>
    public async Task RefusedAsync(string node, string reason, CancellationToken cancellationToken = default)
    {
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            if (rollouts.GetHostRollout() is not { IsFinished: false } rollout
                || rollout.InProgress.FirstOrDefault(n => n.Node == node && n.Stage == HostNodeStage.Rebooting) is not { } step)
            {
                return;
            }

            if (step.Refusal is not null)
            {
                return;
            }

            var next = rollout with { InProgress = [.. rollout.InProgress.Select(n => n == step ? n with { Refusal = Printable.Of(reason, 300) } : n)] };
            if (await rollouts.UpdateHostRolloutAsync(next, cancellationToken))
            {
                await events.AddAsync(EventKind.HostRebootRefused, node, $"node {node} refused to reboot into host image {rollout.Destination(step.Machine)}: {Printable.Of(reason, 300)}", cancellationToken: cancellationToken);
                runner.Wake();
                return;
            }
        }
    }

    private static string Nodes(HostRollout rollout) => rollout.InProgress.Count == 0 ? "none" : string.Join(", ", rollout.InProgress.Select(n => n.Node));

    private static IResult Refused(HostRolloutRefusal refusal) => refusal.Kind switch
    {
        HostRolloutRefusalKind.UnknownImage => Problems.NotFound(refusal.Message),
        HostRolloutRefusalKind.Invalid => Problems.Invalid(ProblemTypes.InvalidRequest, "Bad host rollout", refusal.Message),
        _ => Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Host rollout refused", refusal.Message),
    };

    private HostRolloutStatus Describe(HostRollout rollout)
    {
        var nodes = store.ListNodes().ToDictionary(n => n.Name, StringComparer.Ordinal);
        return new HostRolloutStatus(rollout.Image, rollout.MaxParallel, rollout.Phase.ToString(), rollout.RollingBack, rollout.Reason, rollout.Started, rollout.Finished,
            [.. rollout.Order.Select(t => new HostRolloutNodeStatus(t.Node, t.Machine, t.Domain,
                rollout.Done.Contains(t.Node) ? "Done" : rollout.InProgress.FirstOrDefault(n => n.Node == t.Node)?.Stage.ToString() ?? "Waiting",
                nodes.GetValueOrDefault(t.Node)?.HostImage, nodes.GetValueOrDefault(t.Node)?.Condition.ToString()))]);
    }
}
