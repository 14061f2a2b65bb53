using Heddle.Controller.Agents;
using Heddle.Controller.Store;
using Heddle.Placement;
using Heddle.Placement.Cluster;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// Drives one service toward its deployment, level-based: it reads the service, every node and every instance
/// fresh, works out what is missing or misplaced, and commits the difference in one transaction guarded by the
/// service's revision (a pass computed from a stale revision is dropped and retried, never half-applied).
/// Running it twice changes nothing.
/// </summary>
public sealed partial class DeploymentReconciler(
    IClusterStore store, ServiceModels models, AgentSessions agents, EventLog events, ControllerOptions options, ILogger<DeploymentReconciler> logger)
{
    private readonly Dictionary<string, string> _lastFailure = [];

    /// <returns>True when done; false when the pass met a conflict and should be retried.</returns>
    public bool Reconcile(string serviceName)
    {
        var service = store.GetService(serviceName);
        if (service is null)
        {
            return true;
        }

        var nodes = store.ListNodes();
        var ready = nodes.Where(n => n.Condition == NodeConditions.Ready).Select(n => n.Name).ToHashSet(StringComparer.Ordinal);
        var mine = store.ListInstances(serviceName);
        if (service.Deleting)
        {
            return ReconcileDeletion(service, mine, ready);
        }

        var model = models.For(service);
        if (model is null)
        {
            LogUnreadable(logger, serviceName);
            return true;
        }

        var state = BuildState(nodes, ready, serviceName);
        var removals = new List<(string Role, int Index)>();
        var moving = new Dictionary<(string, int), string>();
        var keep = new List<InstanceRecord>();
        foreach (var instance in mine)
        {
            var role = model.Definition.FindRole(instance.Role);
            var wanted = role is not null && instance.Index < (model.Configuration.FindRole(instance.Role)?.Instances ?? 0);
            if (!wanted)
            {
                removals.Add((instance.Role, instance.Index));
            }
            else if (!ready.Contains(instance.Node))
            {
                moving[(instance.Role, instance.Index)] = $"node {instance.Node} is {nodes.FirstOrDefault(n => n.Name == instance.Node)?.Condition ?? "gone"}";
            }
            else if (instance.Restarts >= options.RestartsBeforeMove)
            {
                moving[(instance.Role, instance.Index)] = $"it restarted {instance.Restarts} times on node {instance.Node}";
            }
            else
            {
                keep.Add(instance);
            }
        }

        var tenant = service.Tenant;
        foreach (var instance in keep)
        {
            state.Restore(ToPlacement(tenant, instance));
        }

        var upserts = new List<InstanceRecord>();
        var failures = new List<string>();
        foreach (var role in model.Definition.Roles)
        {
            var count = model.Configuration.FindRole(role.Name)?.Instances ?? 0;
            var present = keep.Where(i => i.Role == role.Name).Select(i => i.Index).ToHashSet();
            var missing = Enumerable.Range(0, count).Where(i => !present.Contains(i)).ToList();
            if (missing.Count == 0)
            {
                continue;
            }

            // An instance that keeps faulting on a node goes elsewhere: its node takes nothing in this pass.
            var avoided = mine.Where(i => i.Role == role.Name && i.Restarts >= options.RestartsBeforeMove && ready.Contains(i.Node)).Select(i => i.Node).Distinct().ToList();
            foreach (var node in avoided)
            {
                state.SetCondition(node, NodeCondition.Draining);
            }

            var result = new IndexedAllocator(state).Place(new PlacementRequest
            {
                Role = new RoleKey(tenant, service.Name, role.Name),
                Cpus = role.Size.Cores,
                MemoryMiB = role.Size.MemoryMiB,
                Instances = [.. missing.Select(i => new InstanceSlot(i, i % model.UpgradeDomains))],
                Constraints = role.Constraints,
            });
            foreach (var node in avoided)
            {
                state.SetCondition(node, NodeCondition.Ready);
            }

            foreach (var placement in result.Placed)
            {
                upserts.Add(new InstanceRecord
                {
                    Service = service.Name,
                    Role = role.Name,
                    Index = placement.Index,
                    UpgradeDomain = placement.UpgradeDomain,
                    Node = placement.Node,
                    Cpus = placement.Cpus,
                    MemoryMiB = placement.MemoryMiB,
                    Generation = store.NextGeneration(),
                });
            }

            failures.AddRange(result.Unplaced.Select(u => $"{service.Name}/{role.Name}/{u.Index}: {u.Why}"));
        }

        // Instances being moved that could not be placed again are removed all the same: their node is gone.
        removals.AddRange(moving.Keys.Where(k => upserts.All(u => (u.Role, u.Index) != k)));
        if (upserts.Count == 0 && removals.Count == 0)
        {
            ReportFailures(service.Name, failures);
            return true;
        }

        if (!store.CommitPlacement(new PlacementCommit(service.Name, service.Revision, upserts, removals)))
        {
            return false;
        }

        foreach (var placed in upserts)
        {
            var key = (placed.Role, placed.Index);
            var before = mine.FirstOrDefault(i => (i.Role, i.Index) == key);
            if (moving.TryGetValue(key, out var why))
            {
                events.Add(EventKinds.InstanceMoved, placed.Id, $"moved from node {before?.Node} to node {placed.Node} because {why}");
            }
            else
            {
                events.Add(EventKinds.InstancePlaced, placed.Id, $"placed on node {placed.Node}, CPUs {string.Join(',', placed.Cpus)}, {placed.MemoryMiB} MiB");
            }
        }

        foreach (var (role, index) in removals.Where(r => !moving.ContainsKey(r)))
        {
            events.Add(EventKinds.InstanceRemoved, $"{service.Name}/{role}/{index}", "removed: no longer in the configuration");
        }

        ReportFailures(service.Name, failures);
        agents.Notify(mine.Select(i => i.Node).Concat(upserts.Select(u => u.Node)));
        return true;
    }

    private bool ReconcileDeletion(ServiceRecord service, IReadOnlyList<InstanceRecord> instances, HashSet<string> ready)
    {
        // Stopped instances are gone. Instances on nodes that cannot answer are forgotten: a node that returns is
        // told to stop what it no longer owns.
        var gone = instances.Where(i => i.State == Contracts.Api.InstanceStates.Stopped || !ready.Contains(i.Node)).Select(i => (i.Role, i.Index)).ToList();
        if (gone.Count > 0 && !store.CommitPlacement(new PlacementCommit(service.Name, service.Revision, [], gone)))
        {
            return false;
        }

        if (instances.Count == gone.Count)
        {
            store.RemoveService(service.Name);
            events.Add(EventKinds.ServiceDeleted, service.Name, "deleted: every instance has stopped");
        }

        agents.Notify(instances.Select(i => i.Node));
        return true;
    }

    private ClusterState BuildState(IReadOnlyList<NodeRecord> nodes, HashSet<string> ready, string except)
    {
        var state = new ClusterState(nodes.Select(n => new NodeSpec
        {
            Name = n.Name,
            FaultDomain = n.FaultDomain,
            MemoryMiB = n.MemoryMiB,
            Cores = n.Cores,
            Labels = n.Labels,
            Condition = n.Condition switch { NodeConditions.Ready => NodeCondition.Ready, NodeConditions.Draining => NodeCondition.Draining, _ => NodeCondition.Down },
        }), options.PlacementSeed);
        var tenants = store.ListServices().ToDictionary(s => s.Name, s => s.Tenant, StringComparer.Ordinal);
        foreach (var other in store.ListInstances().Where(i => i.Service != except && ready.Contains(i.Node)))
        {
            state.Restore(ToPlacement(tenants.GetValueOrDefault(other.Service, "default"), other));
        }

        return state;
    }

    private static Heddle.Placement.Placement ToPlacement(string tenant, InstanceRecord i) =>
        new(new RoleKey(tenant, i.Service, i.Role), i.Index, i.UpgradeDomain, i.Node, string.Empty, i.Cpus, i.MemoryMiB);

    private void ReportFailures(string service, List<string> failures)
    {
        var text = string.Join("; ", failures);
        if (_lastFailure.GetValueOrDefault(service, string.Empty) == text)
        {
            return;
        }

        _lastFailure[service] = text;
        if (failures.Count > 0)
        {
            events.Add(EventKinds.PlacementFailed, service, $"{failures.Count} instance(s) cannot be placed: {text}");
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Service {Service} has a package or configuration that cannot be read; it is left as it is")]
    private static partial void LogUnreadable(ILogger logger, string service);
}

public static class NodeConditions
{
    public const string Ready = "Ready";
    public const string Down = "Down";
    public const string Draining = "Draining";
}
