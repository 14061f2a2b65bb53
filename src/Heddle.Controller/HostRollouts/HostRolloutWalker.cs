using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;
using Heddle.Model.Validation;

namespace Heddle.Controller.HostRollouts;

/// <summary>What one step of a host rollout sees: the rollout, the nodes and every instance now.</summary>
public sealed record HostWalkInput(HostRollout Rollout, IReadOnlyList<NodeRecord> Nodes, IReadOnlyList<InstanceRecord> Instances, HostRolloutTiming Timing, DateTimeOffset Now)
{
    /// <summary>Whether every load balancer and DNS server following the controller has been sent the latest view (asked only when needed: it rebuilds both).</summary>
    public Func<bool> Published { get; init; } = () => true;
}

/// <summary>What one step decides: the rollout to store, the machines whose image to set, the events.</summary>
public sealed class HostWalkStep
{
    public required HostRollout Rollout { get; set; }

    public bool Changed { get; set; }

    /// <summary>Machines to set to boot an image from their next boot on.</summary>
    public List<(string Machine, string Image)> ImageSets { get; } = [];

    public List<(EventKind Kind, string Subject, string Message)> Events { get; } = [];

    public TimeSpan RequeueAfter { get; set; } = HostRolloutWalker.Poll;
}

/// <summary>
/// A host rollout as a pure state machine, shaped like <see cref="Upgrades.UpgradeWalker"/>. Nodes are walked in
/// upgrade-domain order, at most <see cref="HostRollout.MaxParallel"/> at a time and never two upgrade domains at once.
/// Each node: its machine is set to the destination image and it is drained (the placement pass takes its instances
/// out of the load balancer and DNS, a surge instance elsewhere first where a role would otherwise have none Ready:
/// <see cref="Reconciliation.HostEvacuation"/>); once all of them are out and every data plane has been told, its agent
/// is told to reboot (the goal state's reboot directive) and stops them; the instances stay placed on the node, and
/// the agent that comes back on the image starts them again; the health gate waits until the node reports the image,
/// is Ready, and the instances it ran are Ready and in rotation again, for a stable time. A pause lets
/// the nodes being walked finish and starts no other; a rollback walks the nodes touched back to their previous image.
/// A node that passes a timeout, or whose agent refuses to reboot, fails the rollout with the reason. No clock is
/// read and nothing is written here.
/// </summary>
public static class HostRolloutWalker
{
    /// <summary>How often a rollout that waits looks again.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(500);

    public static HostWalkStep Step(HostWalkInput input)
    {
        var step = new HostWalkStep { Rollout = input.Rollout };
        if (input.Rollout.IsFinished)
        {
            return step;
        }

        var nodes = input.Nodes.ToDictionary(n => n.Name, StringComparer.Ordinal);
        var walking = new List<HostNodeStep>();
        foreach (var node in input.Rollout.InProgress)
        {
            var next = Advance(step, input, node, nodes.GetValueOrDefault(node.Node));
            if (step.Rollout.IsFinished)
            {
                return step;
            }

            if (next is not null)
            {
                walking.Add(next);
            }
        }

        if (step.Changed)
        {
            step.Rollout = step.Rollout with { InProgress = walking };
        }

        if (step.Rollout.Phase is not HostRolloutPhase.Paused)
        {
            StartNodes(step, input, nodes);
        }

        var rollout = step.Rollout;
        if (rollout.InProgress.Count == 0 && rollout.Done.Count >= rollout.Order.Count && rollout.Phase is not HostRolloutPhase.Paused)
        {
            Finish(step, input.Now);
        }

        return step;
    }

    /// <summary>The walk back: the nodes being walked and those done, latest first, each to its machine's previous image.</summary>
    public static HostRollout RollBack(HostRollout rollout, string reason, DateTimeOffset now)
    {
        var touched = rollout.InProgress.Select(n => n.Node).Concat(Enumerable.Reverse(rollout.Done)).Distinct(StringComparer.Ordinal).ToList();
        var targets = rollout.Order.ToDictionary(t => t.Node, StringComparer.Ordinal);
        return rollout with
        {
            RollingBack = true, Phase = HostRolloutPhase.RollingBack, Reason = reason, Finished = null,
            Order = [.. touched.Where(targets.ContainsKey).Select(n => targets[n])], InProgress = [], Done = [],
        };
    }

    /// <summary>One node being walked, one stage on if it can; null when the node is done.</summary>
    private static HostNodeStep? Advance(HostWalkStep step, HostWalkInput input, HostNodeStep node, NodeRecord? record)
    {
        var rollout = step.Rollout;
        var image = rollout.Destination(node.Machine);
        var now = input.Now;
        switch (node.Stage)
        {
            case HostNodeStage.Draining:
                var onNode = input.Instances.Where(i => i.Node == node.Node).ToList();
                var serving = onNode.Where(i => !i.Draining).ToList();
                // Out of rotation, and the data planes told so (not waited for past the limit: one that is away does not hold the walk).
                if (serving.Count == 0 && (now - node.StageStarted >= UpgradeWalker.PublishWaitLimit || input.Published()))
                {
                    step.Changed = true;
                    step.Events.Add((EventKind.HostNodeRebooting, node.Node,
                        $"{Direction(rollout)}: node {node.Node} is drained; told to reboot into host image {image}"
                        + (onNode.Count == 0 ? string.Empty : $" (its agent stops its {onNode.Count} instance(s) with their grace period; they start there again after)")));
                    return node with { Stage = HostNodeStage.Rebooting, StageStarted = now };
                }

                if (now - node.StageStarted >= input.Timing.DrainTimeout)
                {
                    Fail(step, now, $"node {node.Node} was not drained within {DurationText.Format(input.Timing.DrainTimeout)}: "
                        + (serving.Count == 0 ? "the load balancers and DNS servers were not all told" : $"{string.Join(", ", serving.Take(5).Select(i => $"{i.Id} ({i.State})"))} still in rotation (no other instance of its role Ready elsewhere)"));
                }

                return node;
            case HostNodeStage.Rebooting:
                if (node.Refusal is { } refusal)
                {
                    Fail(step, now, $"node {node.Node} did not reboot: its agent refused ({refusal})");
                    return node;
                }

                // An agent that runs the image already does not reboot (so a node that rejoins is never told again).
                if (record is { Condition: NodeCondition.Ready } && record.HostImage == image)
                {
                    step.Changed = true;
                    step.Events.Add((EventKind.HostNodeBack, node.Node, $"{Direction(rollout)}: node {node.Node} is back on host image {image} after {(now - node.StageStarted).TotalSeconds:0} s; health gate"));
                    return node with { Stage = HostNodeStage.Gating, StageStarted = now, HealthySince = null };
                }

                if (now - node.StageStarted >= input.Timing.BootTimeout)
                {
                    var seen = record is null ? "it has no node record" : $"it is {record.Condition} and reports host image {record.HostImage ?? "none"}";
                    Fail(step, now, $"node {node.Node} did not come back on host image {image} within {DurationText.Format(input.Timing.BootTimeout)}: {seen}");
                }

                return node;
            default:
                var problem = Unhealthy(input, node, record, image);
                if (problem is null)
                {
                    var since = node.HealthySince ?? now;
                    if (now - since >= input.Timing.HealthStable)
                    {
                        step.Changed = true;
                        step.Rollout = step.Rollout with { Done = [.. rollout.Done, node.Node] };
                        step.Events.Add((EventKind.HostNodeHealthy, node.Node,
                            $"{Direction(rollout)}: node {node.Node} is healthy on host image {image}, its {node.Instances.Count} instance(s) Ready, for {DurationText.Format(input.Timing.HealthStable)}"));
                        return null;
                    }

                    step.Changed |= node.HealthySince is null;
                    return node with { HealthySince = since };
                }

                if (now - node.StageStarted >= input.Timing.GateTimeout)
                {
                    Fail(step, now, $"node {node.Node} not healthy within {DurationText.Format(input.Timing.GateTimeout)} of coming back: {problem}");
                }

                step.Changed |= node.HealthySince is not null;
                return node with { HealthySince = null };
        }
    }

    /// <summary>Why the health gate does not hold for the node, or null when it does.</summary>
    private static string? Unhealthy(HostWalkInput input, HostNodeStep node, NodeRecord? record, string image)
    {
        if (record is null || record.Condition != NodeCondition.Ready || record.HostImage != image)
        {
            return record is null ? "it has no node record" : $"it is {record.Condition} on host image {record.HostImage ?? "none"}";
        }

        var byId = input.Instances.ToDictionary(i => i.Id, StringComparer.Ordinal);
        // An instance gone since (its service deleted or scaled in) is not waited for.
        var laggard = node.Instances.Select(byId.GetValueOrDefault).FirstOrDefault(i => i is not null && (i.State != InstanceState.Ready || i.Draining));
        return laggard is null ? null : $"{laggard.Id} is {laggard.State}{(laggard.Draining ? " and draining" : string.Empty)}";
    }

    /// <summary>Starts the next nodes in order while there is room, never two upgrade domains at once.</summary>
    private static void StartNodes(HostWalkStep step, HostWalkInput input, Dictionary<string, NodeRecord> nodes)
    {
        var rollout = step.Rollout;
        var busy = rollout.InProgress.Select(n => n.Node).Concat(rollout.Done).ToHashSet(StringComparer.Ordinal);
        var walking = rollout.InProgress.ToList();
        var done = rollout.Done.ToList();
        foreach (var target in rollout.Order.Where(t => !busy.Contains(t.Node)))
        {
            if (walking.Count >= rollout.MaxParallel || walking.Count > 0 && walking[0].Domain != target.Domain)
            {
                break;
            }

            var image = rollout.Destination(target.Machine);
            step.Changed = true;
            if (!rollout.RollingBack && nodes.GetValueOrDefault(target.Node) is { Condition: NodeCondition.Ready } record && record.HostImage == image)
            {
                done.Add(target.Node);
                step.ImageSets.Add((target.Machine, image)); // what it boots next, should it have been set to another by hand
                step.Events.Add((EventKind.HostNodeHealthy, target.Node, $"{Direction(rollout)}: node {target.Node} already runs host image {image}"));
                continue;
            }

            var instances = input.Instances.Where(i => i.Node == target.Node).Select(i => i.Id).Order(StringComparer.Ordinal).ToList();
            step.ImageSets.Add((target.Machine, image));
            walking.Add(new HostNodeStep
            {
                Node = target.Node, Machine = target.Machine, Domain = target.Domain, Stage = HostNodeStage.Draining, StageStarted = input.Now, Instances = instances,
            });
            step.Events.Add((EventKind.HostNodeDraining, target.Node,
                $"{Direction(rollout)}: node {target.Node} (upgrade domain {target.Domain}): machine {target.Machine} set to boot host image {image}; "
                + (instances.Count == 0 ? "it runs no instance" : $"draining {string.Join(", ", instances)}: out of the load balancer and DNS, staying placed there")));
        }

        if (step.Changed)
        {
            step.Rollout = rollout with { InProgress = walking, Done = done };
        }
    }

    private static void Finish(HostWalkStep step, DateTimeOffset now)
    {
        var rollout = step.Rollout;
        step.Changed = true;
        step.Rollout = rollout with { Phase = HostRolloutPhase.Done, Finished = now };
        step.Events.Add(rollout.RollingBack
            ? (EventKind.HostRolloutRolledBack, rollout.Image, $"host rollout to {rollout.Image} rolled back ({rollout.Reason}): {rollout.Order.Count} node(s) back on their previous image")
            : (EventKind.HostRolloutCompleted, rollout.Image, $"host rollout to {rollout.Image} completed: {rollout.Order.Count} node(s) in {(now - rollout.Started).TotalSeconds:0} s"));
    }

    private static void Fail(HostWalkStep step, DateTimeOffset now, string reason)
    {
        var rollout = step.Rollout;
        step.Changed = true;
        step.Rollout = rollout with { Phase = HostRolloutPhase.Failed, Reason = reason, Finished = now };
        step.Events.Add((EventKind.HostRolloutFailed, rollout.Image,
            $"{Direction(rollout)} failed: {reason}; {(rollout.RollingBack ? "the machines keep the images they were set to" : "'heddle hostimage rollout rollback' sets the machines walked back to their previous image")}"));
    }

    private static string Direction(HostRollout rollout) => rollout.RollingBack ? $"rollback of host rollout to {rollout.Image}" : $"host rollout to {rollout.Image}";
}
