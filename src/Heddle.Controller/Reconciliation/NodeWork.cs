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
    public void Changed(string node)
    {
        foreach (var service in store.ListInstancesOnNode(node).Select(i => i.Service).Concat(reconciler.WaitingForRoom()).Distinct(StringComparer.Ordinal))
        {
            queue.Add(service);
        }
    }
}
