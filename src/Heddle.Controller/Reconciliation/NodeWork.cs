using Heddle.Controller.Store;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// What a change of a node (it joined, came back, went Down, was removed) gives the reconcilers to do: the services with
/// an instance placed on it, and the services with instances waiting for room (a node that joins may have it). Not every
/// service: each pass weighs the whole cluster, and a thousand nodes saying Hello after a controller restart queued every
/// service a thousand times. The periodic resync still visits every service.
/// </summary>
public sealed class NodeWork(IClusterStore store, WorkQueue queue, DeploymentReconciler reconciler)
{
    public void Changed(string node) => Queue(store.ListInstancesOnNode(node));

    /// <summary>As <see cref="Changed"/>, with the instances the node had (read before it was removed).</summary>
    public void Queue(IEnumerable<InstanceRecord> onNode)
    {
        foreach (var service in onNode.Select(i => i.Service).Concat(reconciler.WaitingForRoom()).Distinct(StringComparer.Ordinal))
        {
            queue.Add(service);
        }
    }
}
