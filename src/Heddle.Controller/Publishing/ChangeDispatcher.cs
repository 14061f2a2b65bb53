using Heddle.Controller.Agents;
using Heddle.Controller.Dns;
using Heddle.Controller.LoadBalancing;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;

namespace Heddle.Controller.Publishing;

/// <summary>
/// The one consumer of the store's change feed (<see cref="IClusterStore.Committed"/>): it turns each commit's typed
/// changes, this controller's own and those of other controllers sharing the store alike, into work queue keys, goal
/// states for the agents connected here, events for `heddle events -f`, and rebuilds of the views DNS and the load
/// balancer are fed from. No writer signals anything itself.
/// <list type="bullet">
/// <item>An event stored: published to followers; the views rebuilt (a burst costs one rebuild).</item>
/// <item>A service record: the service queued (not for the reconciler's own commits: it looks again when it needs to);
/// its nodes sent their goal states when it appears, goes, is being deleted or changes uid.</item>
/// <item>A placement: the service queued (not the reconciler's own); the node the instance is placed on and the node it
/// left sent their goal states at once, the nodes of the service's other instances after the peer delay (their peers).</item>
/// <item>A report: the service queued when the instance's state, restarts or running revision changed (a health gate, a
/// deployment finished); the role's other instances' nodes told after the peer delay when its readiness or ports changed.</item>
/// <item>A node record changed but for when it was seen (joined, Down, back, drained, removed): the services on it and
/// those waiting for room queued; when its address changed, the nodes of its services told (peers carry it); a node removed, its stream here ended.</item>
/// <item>An image: every node told. The host rollout's steps: every service queued, the nodes it walks told.</item>
/// <item>A certificate revoked: the node's stream here ended.</item>
/// </list>
/// A writer stores its events with its commit (<see cref="PlacementCommit.Events"/>, <see cref="DeploymentWrite.Events"/>,
/// the <c>told</c> parameters), and the feed tells of both together: what the feed sets going never writes its events first.
/// </summary>
public sealed class ChangeDispatcher
{
    private readonly IClusterStore _store;
    private readonly WorkQueue _queue;
    private readonly AgentSessions _agents;
    private readonly EventLog _events;
    private readonly NodeWork _nodeWork;
    private readonly DnsRecordSource _dns;
    private readonly LoadBalancerConfigSource _balancers;

    /// <summary>
    /// A change the watch brought is acted on as one of this controller's own: it is another controller's, or this
    /// controller's own that the watch brought before the commit call took it in (then the reconciler's own commit queues
    /// its service once more: one pass that finds nothing to do), or the copy loaded again after the history was
    /// compacted (then everything is looked at again, as a resync would).
    /// </summary>
    public ChangeDispatcher(IClusterStore store, WorkQueue queue, AgentSessions agents, EventLog events, NodeWork nodeWork, DnsRecordSource dns,
        LoadBalancerConfigSource balancers)
    {
        _store = store;
        _queue = queue;
        _agents = agents;
        _events = events;
        _nodeWork = nodeWork;
        _dns = dns;
        _balancers = balancers;
        store.Committed += OnCommitted;
    }

    private void OnCommitted(IReadOnlyList<StoreChange> changes)
    {
        var services = new HashSet<string>(StringComparer.Ordinal); // whose nodes get their goal states
        var peers = new HashSet<string>(StringComparer.Ordinal); // whose nodes get their goal states after the peer delay
        var nodes = new HashSet<string>(StringComparer.Ordinal);
        var all = false;
        foreach (var change in changes)
        {
            if (change is { Kind: RecordKind.Event, Event: { } stored })
            {
                _events.Publish(stored);
                _dns.Schedule();
                _balancers.Schedule();
                continue;
            }

            var queue = change.Source != ChangeSource.Reconciler;
            switch (change.Kind)
            {
                case RecordKind.Service when change.Service is { } service:
                    Queue(change.Name, queue);
                    if (service.Before is null || service.After is null || service.Before.Deleting != service.After.Deleting || service.Before.Uid != service.After.Uid)
                    {
                        services.Add(change.Name);
                    }

                    break;
                case RecordKind.Instance:
                    Queue(change.Name, queue);
                    if (change.Placement is { } placement)
                    {
                        // The node it is placed on and the node it left are told at once; the role's other nodes see it
                        // among their peers after the peer delay, as they see a report. Told at once too, the nodes of
                        // every service a node loss touched (a hundred each) were each sent a goal state per instance
                        // placed elsewhere, and the nodes given those instances waited their turn behind them all.
                        nodes.UnionWith(NodesOf(placement));
                        peers.Add(change.Name);
                    }
                    else
                    {
                        services.Add(change.Name);
                    }

                    break;
                case RecordKind.Status when change.Report is { After: { } report } reported:
                    Queue(change.Name, report.ProgressChanged(reported.Before));
                    if (report.PeersSeeChanged(reported.Before))
                    {
                        _agents.NotifyPeers(_store.ListPlacements(change.Name).Where(i => i.Role == report.Role && i.Index != report.Index).Select(i => i.Node));
                    }

                    break;
                case RecordKind.Node when change.Node is { } node && (node.Before is null || node.After is null || !node.Before.SameAs(node.After)):
                    _nodeWork.Changed(change.Name);
                    if (node is { Before: { } was, After: { } now } && was.Address != now.Address)
                    {
                        // Its instances' peers carry its address (a node that joins has none yet: not every node told per join).
                        services.UnionWith(_store.ListInstancesOnNode(change.Name).Select(i => i.Service));
                    }

                    if (node.After is null)
                    {
                        _agents.Disconnect(change.Name); // removed: its stream here ends, whichever controller removed it
                    }

                    break;
                case RecordKind.Image:
                    all = true;
                    break;
                case RecordKind.HostRollout when change.HostRollout is { } rollout && StepsChanged(rollout):
                    foreach (var each in _store.ListServices())
                    {
                        _queue.Add(each.Name);
                    }

                    nodes.UnionWith(Walked(rollout.Before).Concat(Walked(rollout.After)));
                    break;
                case RecordKind.Certificate when change.Certificate is { Revoked: true } revoked:
                    _agents.Disconnect(revoked.Node); // its stream here ends, whichever controller removed it
                    break;
            }
        }

        if (all)
        {
            _agents.NotifyAll();
            return;
        }

        foreach (var service in services)
        {
            nodes.UnionWith(_store.ListPlacements(service).Select(i => i.Node));
        }

        if (nodes.Count > 0)
        {
            _agents.Notify(nodes);
        }

        peers.ExceptWith(services);
        foreach (var service in peers)
        {
            _agents.NotifyPeers(_store.ListPlacements(service).Select(i => i.Node).Where(n => !nodes.Contains(n)));
        }
    }

    private static IEnumerable<string> NodesOf(Change<InstanceRecord> placement) =>
        new[] { placement.Before?.Node, placement.After?.Node }.Where(n => !string.IsNullOrEmpty(n)).Select(n => n!);

    private void Queue(string service, bool queue)
    {
        if (queue)
        {
            _queue.Add(service);
        }
    }

    private static IEnumerable<string> Walked(HostRollouts.HostRollout? rollout) => rollout is null || rollout.IsFinished ? [] : rollout.InProgress.Select(n => n.Node);

    /// <summary>Whether the nodes being walked, or their stages, changed (a step, not only a version).</summary>
    private static bool StepsChanged(Change<HostRollouts.HostRollout> rollout) =>
        !(rollout.Before is null || rollout.Before.IsFinished ? [] : rollout.Before.InProgress.Select(n => (n.Node, n.Stage)))
            .SequenceEqual(rollout.After is null || rollout.After.IsFinished ? [] : rollout.After.InProgress.Select(n => (n.Node, n.Stage)));
}
