using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// The placement pass's part of a host rollout (<see cref="HostRollouts.HostRolloutWalker"/>): the instances on the
/// nodes being updated leave the load balancer and DNS first, and move elsewhere once every data plane has been told
/// (their agent then stops them with their grace period). A role that would have no Ready instance outside those
/// nodes gets one surge instance elsewhere first (an index past its count), which stays until the role's instances
/// are all Ready off those nodes, and is then released like any unwanted instance (drained first).
/// </summary>
internal sealed class HostEvacuation(IReadOnlySet<string> evacuating, HashSet<string> ready)
{
    public static readonly HostEvacuation None = new(new HashSet<string>(), []);

    /// <summary>How often a pass that waits for a surge instance to be Ready looks again (its reports queue it too).</summary>
    private static readonly TimeSpan SurgePoll = TimeSpan.FromSeconds(1);

    public bool Evacuates(string node) => evacuating.Contains(node);

    public bool Any => evacuating.Count > 0;

    /// <summary>How many surge instances a role needs now (0 or 1), given its instances and configured count.</summary>
    public int Surge(IReadOnlyList<InstanceRecord> role, int count)
    {
        if (evacuating.Count == 0)
        {
            return 0;
        }

        var onEvacuated = role.Any(i => i.Index < count && evacuating.Contains(i.Node));
        var needed = onEvacuated && !role.Any(i => i.Index < count && ServesOutside(i));
        var surging = role.Any(i => i.Index >= count);
        var settled = Enumerable.Range(0, count).All(index => role.FirstOrDefault(i => i.Index == index) is { } i && ServesOutside(i));
        return needed || surging && !settled ? 1 : 0;
    }

    /// <summary>
    /// An instance on a node being updated: taken out of rotation when another instance of its role serves elsewhere,
    /// kept while the data planes are told. True while it stays; false when it moves now.
    /// </summary>
    public bool Stays(ServicePass pass, InstanceRecord instance, IReadOnlyList<InstanceRecord> role, Func<bool> published)
    {
        if (!instance.Draining)
        {
            if (!role.Any(i => i != instance && ServesOutside(i)))
            {
                pass.Requeue(SurgePoll); // waiting for a surge instance elsewhere to be Ready
                return true;
            }

            pass.Mark(instance, instance.Revision, draining: true);
            pass.Events.Add((EventKind.InstanceDraining, instance.Id, $"node {instance.Node} is being updated to a new host image: out of the load balancer and DNS, moving once they have been told"));
            pass.Requeue(UpgradeWalker.PublishPoll);
            return true;
        }

        if (!published())
        {
            pass.Requeue(UpgradeWalker.PublishPoll);
            return true;
        }

        return false;
    }

    private bool ServesOutside(InstanceRecord instance) =>
        instance.State == InstanceState.Ready && !instance.Draining && !evacuating.Contains(instance.Node) && ready.Contains(instance.Node);
}
