using Heddle.Contracts.Api;
using Heddle.Controller.HostRollouts;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// The placement pass's part of a host rollout (<see cref="HostRolloutWalker"/>). The instances on a node being
/// updated stay placed there, as a host update in a cloud's fabric does: they leave the load balancer and DNS (marked
/// draining) while the node is drained, their agent stops them with their grace period when it is told to reboot, and
/// each becomes a fresh run on the same node and CPUs then, started by the agent that comes back on the new image. A
/// role that would have no Ready instance in rotation off the nodes being updated gets one surge instance elsewhere first
/// (an index past its count), which stays until the role's instances are all Ready in rotation off the nodes still
/// leaving, and is then released like any unwanted instance (drained first). The nodes being updated take no new instance.
/// </summary>
/// <param name="leaving">The nodes being drained or rebooted.</param>
/// <param name="rebooting">Those of them told to reboot.</param>
/// <param name="ready">The nodes that are Ready.</param>
/// <param name="walking">Whether a rollout is under way (a surge instance is kept only then).</param>
internal sealed class HostEvacuation(IReadOnlySet<string> leaving, IReadOnlySet<string> rebooting, IReadOnlySet<string> ready, bool walking = true)
{
    public static readonly HostEvacuation None = new(new HashSet<string>(), new HashSet<string>(), new HashSet<string>(), walking: false);

    /// <summary>How often a pass that waits for a surge instance to be Ready looks again (its reports queue it too).</summary>
    private static readonly TimeSpan SurgePoll = TimeSpan.FromSeconds(1);

    /// <summary>The rollout's nodes being drained or rebooted now (none when there is no rollout or it has ended).</summary>
    public static HostEvacuation Of(HostRollout? rollout, IReadOnlySet<string> ready)
    {
        if (rollout is null || rollout.IsFinished)
        {
            return None;
        }

        // A node back on its image (the health gate) is no longer leaving, but the rollout still is under way: a role's
        // surge instance stays until the instances there are Ready in rotation again.
        var leaving = rollout.InProgress.Where(n => n.Stage is HostNodeStage.Draining or HostNodeStage.Rebooting).Select(n => n.Node).ToHashSet(StringComparer.Ordinal);
        var rebooting = rollout.InProgress.Where(n => n.Stage == HostNodeStage.Rebooting).Select(n => n.Node).ToHashSet(StringComparer.Ordinal);
        return new HostEvacuation(leaving, rebooting, ready);
    }

    /// <summary>Whether the node is being drained or rebooted: it takes nothing new, and what it runs is out of rotation.</summary>
    public bool Leaves(string node) => leaving.Contains(node);

    /// <summary>Whether the node was told to reboot: its instances stay placed there through the reboot, whatever its condition.</summary>
    public bool Reboots(string node) => rebooting.Contains(node);

    /// <summary>How many surge instances a role needs now (0 or 1), given its instances and configured count.</summary>
    public int Surge(IReadOnlyList<InstanceRecord> role, int count)
    {
        if (!walking)
        {
            return 0; // no rollout: an instance past the count is released as always (a scale-in)
        }

        var onLeaving = role.Any(i => i.Index < count && leaving.Contains(i.Node));
        var needed = onLeaving && !role.Any(i => i.Index < count && ServesOutside(i));
        var surging = role.Any(i => i.Index >= count);
        var settled = Enumerable.Range(0, count).All(index => role.FirstOrDefault(i => i.Index == index) is { } i && ServesOutside(i));
        return needed || surging && !settled ? 1 : 0;
    }

    /// <summary>
    /// An instance on a node being drained: taken out of rotation once another instance of its role serves off the
    /// nodes leaving (a surge instance, if need be); it stays placed there.
    /// </summary>
    public void TakeOut(ServicePass pass, InstanceRecord instance, IReadOnlyList<InstanceRecord> role)
    {
        if (instance.Draining)
        {
            return;
        }

        if (!role.Any(i => i != instance && ServesOutside(i)))
        {
            pass.Requeue(SurgePoll); // waiting for a surge instance elsewhere to be Ready
            return;
        }

        pass.Mark(instance, instance.Revision, draining: true);
        pass.Events.Add((EventKind.InstanceDraining, instance.Id,
            $"node {instance.Node} is being updated to a new host image: out of the load balancer and DNS; it stops for the reboot and starts there again after"));
        pass.Requeue(UpgradeWalker.PublishPoll);
    }

    /// <summary>
    /// An instance on a node told to reboot: its agent stops it (it was drained before the node was told), so it becomes
    /// a fresh run on the same node and CPUs, Pending until the agent that comes back on the new image starts it.
    /// </summary>
    public static void StayThroughReboot(ServicePass pass, InstanceRecord instance)
    {
        if (!instance.Draining)
        {
            return; // a fresh run already, or placed there since
        }

        pass.Restart(instance, instance.Revision);
    }

    /// <summary>
    /// A wanted instance at the desired revision left draining on a Ready node that no rollout is taking out (a rollout
    /// that failed, or was rolled back, before its node rebooted): it goes back into rotation. Nothing else drains an
    /// instance at the desired revision and keeps it (an upgrade drains those at another revision; an unwanted one is released).
    /// </summary>
    public static void Return(ServicePass pass, InstanceRecord instance, long revision)
    {
        if (!instance.Draining || instance.Revision != revision)
        {
            return;
        }

        pass.Mark(instance, revision, draining: false);
        pass.Events.Add((EventKind.InstanceReturned, instance.Id, $"back in the load balancer and DNS: node {instance.Node} is no longer being updated"));
    }

    private bool ServesOutside(InstanceRecord instance) =>
        instance.State == InstanceState.Ready && !instance.Draining && !leaving.Contains(instance.Node) && ready.Contains(instance.Node);
}
