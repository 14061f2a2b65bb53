using Heddle.Controller.Agents;
using Heddle.Controller.Dns;
using Heddle.Controller.LoadBalancing;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;

namespace Heddle.Controller.Publishing;

/// <summary>
/// The one consumer of the store's change feed (<see cref="IClusterStore.Changed"/>): it turns typed changes into work
/// queue keys, goal states for the agents connected here, events for `heddle events -f`, and rebuilds of the views DNS
/// and the load balancer are fed from.
/// <list type="bullet">
/// <item>Every event stored, by any controller, is published to followers and rebuilds the views (a burst costs one rebuild).</item>
/// <item>What another controller sharing the store changed is done here as it is for a change of this controller's own:
/// the service queued (the leader reconciles what a follower accepted or an agent reported there), the agents connected
/// here sent their goal states (the leader placed instances on them; a burst costs one round), a revoked node's stream
/// ended.</item>
/// </list>
/// This controller's own writers still queue their services and tell their agents themselves: what they signal is not in
/// the records they commit. Each writes its events after its commit, so a key queued at the commit could let the reconciler's
/// events come before the writer's ("InstancePlaced" before "DeploymentAccepted"); a pass notifies the nodes of all the
/// service's instances, and a deletion pass does so without committing anything; an agent's report queues and tells the
/// role's peers only for some changes of state, ports or revision (old against new, which a change does not carry); a
/// node judged Down queues the services on it, one heard again every service; an unchanged Hello commits nothing.
/// </summary>
public sealed class ChangeDispatcher
{
    private readonly WorkQueue _queue;
    private readonly AgentSessions _agents;
    private readonly EventLog _events;
    private readonly NodeWork _nodeWork;
    private readonly DnsRecordSource _dns;
    private readonly LoadBalancerConfigSource _balancers;
    private readonly bool _shared;
    private int _goalsPending;

    /// <param name="shared">Whether other controllers write to the store too (etcd); on a store of its own a change this controller did not commit is not acted on.</param>
    public ChangeDispatcher(IClusterStore store, bool shared, WorkQueue queue, AgentSessions agents, EventLog events, NodeWork nodeWork, DnsRecordSource dns,
        LoadBalancerConfigSource balancers)
    {
        _shared = shared;
        _queue = queue;
        _agents = agents;
        _events = events;
        _nodeWork = nodeWork;
        _dns = dns;
        _balancers = balancers;
        store.Changed += OnChanged;
    }

    private void OnChanged(StoreChange change)
    {
        if (change is { Kind: RecordKind.Event, Event: { } stored })
        {
            _events.Publish(stored);
            _dns.Schedule();
            _balancers.Schedule();
            return;
        }

        if (change.Local || !_shared)
        {
            return;
        }

        switch (change.Kind)
        {
            // Goal states hold the service's revision and whether it is being deleted, the instances placed, their
            // peers' readiness and ports, and the nodes' addresses: any of these changed elsewhere is sent on.
            case RecordKind.Service or RecordKind.Status or RecordKind.Instance:
                _queue.Add(change.Name);
                SendGoals();
                break;
            case RecordKind.Node:
                _nodeWork.Changed(change.Name);
                SendGoals();
                break;
            case RecordKind.Image or RecordKind.HostRollout:
                // A host rollout's nodes being walked get the reboot directive in their goal state.
                SendGoals();
                break;
            case RecordKind.Certificate when change.Certificate is { Revoked: true } revoked:
                _agents.Disconnect(revoked.Node); // removed through another controller: its stream here ends too
                break;
        }
    }

    private void SendGoals()
    {
        if (Interlocked.Exchange(ref _goalsPending, 1) == 0)
        {
            _ = Task.Run(() =>
            {
                Interlocked.Exchange(ref _goalsPending, 0);
                _agents.NotifyAll();
            });
        }
    }
}
