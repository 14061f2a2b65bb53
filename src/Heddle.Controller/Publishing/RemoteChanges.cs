using Heddle.Controller.Agents;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Publishing;

/// <summary>
/// What another controller sharing the store changed, turned into what this controller does about a change of its
/// own: the service queued (the leader reconciles what a follower accepted or an agent reported there), the agents
/// connected here sent their goal states (the leader placed instances on them), and events published to DNS, the
/// load balancer and `heddle events -f` (whichever controller they follow). A burst of changes costs one round of
/// goal states.
/// </summary>
public sealed class RemoteChanges
{
    private readonly WorkQueue _queue;
    private readonly AgentSessions _agents;
    private readonly EventLog _events;
    private readonly NodeWork _nodeWork;
    private int _goalsPending;

    public RemoteChanges(KvMirror mirror, WorkQueue queue, AgentSessions agents, EventLog events, NodeWork nodeWork)
    {
        _nodeWork = nodeWork;
        _queue = queue;
        _agents = agents;
        _events = events;
        mirror.Changed += OnChanged;
    }

    private void OnChanged(KvEvent change)
    {
        var parts = change.Key.Split('/');
        switch (parts[0])
        {
            // Goal states hold the service's revision and whether it is being deleted, the instances placed, their
            // peers' readiness and ports, and the nodes' addresses: any of these changed elsewhere is sent on.
            case "services" or "status" or "instances" when parts.Length > 1:
                _queue.Add(parts[1]);
                SendGoals();
                break;
            case "nodes" when parts.Length > 1:
                _nodeWork.Changed(parts[1]);
                SendGoals();
                break;
            case "images":
                SendGoals();
                break;
            case "certificates" when change.Value is not null && System.Text.Json.JsonSerializer.Deserialize<CertificateRecord>(change.Value, KvClusterStore.Format) is { Revoked: true } revoked:
                _agents.Disconnect(revoked.Node); // removed through another controller: its stream here ends too
                break;
            case "events" when KvClusterStore.EventOf(change) is { } stored:
                _events.Publish(stored);
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
