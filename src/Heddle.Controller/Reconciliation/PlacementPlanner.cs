using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;
using Heddle.Placement;
using Heddle.Placement.Cluster;
using Heddle.Model.Definition;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// The placement part of a pass: releases instances that are no longer wanted (out of the load balancer and DNS
/// first, removed once every data plane has been told), moves instances off nodes that are not Ready or where they
/// keep faulting, and places what is missing through the allocator, at the service's desired revision.
/// </summary>
internal sealed class PlacementPlanner(IClusterStore store, ControllerOptions options, TimeProvider time)
{
    private readonly PlacementCache _cache = new(store, options, time);

    /// <summary>How many times the allocator's view of the whole cluster was built (see <see cref="PlacementCache"/>).</summary>
    public int ClusterBuilds => _cache.Builds;

    /// <summary>The pass just planned for the service is being committed (<see cref="PlacementCache.Committing"/>).</summary>
    public void Committing(string service, string tenant, IReadOnlyList<InstanceRecord> instances) => _cache.Committing(service, tenant, instances);

    /// <summary>That commit has landed or failed (<see cref="PlacementCache.Committed"/>).</summary>
    public void Committed(string service) => _cache.Committed(service);

    /// <returns>The instances that could not be placed, each with why.</returns>
    /// <param name="unplaced">When given, receives why each instance could not be placed, for the metrics.</param>
    /// <param name="evacuation">The nodes a host rollout is draining or rebooting (none when not given).</param>
    public List<string> Plan(ServicePass pass, ServiceModel model, long revision, IReadOnlyList<NodeRecord> nodes, IReadOnlySet<string> ready, Func<bool> published,
        List<Explanation>? unplaced = null, HostEvacuation? evacuation = null)
    {
        evacuation ??= HostEvacuation.None;
        return _cache.Use(nodes, ready, pass.Service.Name, state =>
        {
            // The nodes a host rollout drains or reboots take nothing in this pass; the view outlives it, so they are Ready again after.
            var evacuated = nodes.Where(n => n.Condition == Store.NodeCondition.Ready && evacuation.Leaves(n.Name)).Select(n => n.Name).ToList();
            foreach (var node in evacuated)
            {
                state.SetCondition(node, Placement.Cluster.NodeCondition.Draining);
            }

            try
            {
                return Plan(state, pass, model, revision, nodes, ready, published, unplaced, evacuation);
            }
            finally
            {
                foreach (var node in evacuated)
                {
                    state.SetCondition(node, Placement.Cluster.NodeCondition.Ready);
                }
            }
        });
    }

    private List<string> Plan(ClusterState state, ServicePass pass, ServiceModel model, long revision, IReadOnlyList<NodeRecord> nodes, IReadOnlySet<string> ready,
        Func<bool> published, List<Explanation>? unplaced, HostEvacuation evacuation)
    {
        var service = pass.Service;
        var moving = new Dictionary<(string, int), string>();
        var keep = new List<InstanceRecord>();
        var current = pass.Instances;
        var surge = model.Definition.Roles.ToDictionary(r => r.Name,
            r => evacuation.Surge([.. current.Where(i => i.Role == r.Name)], model.Configuration.FindRole(r.Name)?.Instances ?? 0), StringComparer.Ordinal);
        foreach (var instance in current)
        {
            var role = model.Definition.FindRole(instance.Role);
            var wanted = role is not null && instance.Index < (model.Configuration.FindRole(instance.Role)?.Instances ?? 0) + surge.GetValueOrDefault(instance.Role);
            if (!wanted)
            {
                if (Release(pass, instance, ready, published))
                {
                    keep.Add(instance); // still running while it drains: its cores are not free yet
                }
            }
            else if (evacuation.Reboots(instance.Node))
            {
                HostEvacuation.StayThroughReboot(pass, instance); // stays placed there, Down or not, until the rollout ends
                keep.Add(instance);
            }
            else if (!ready.Contains(instance.Node))
            {
                moving[(instance.Role, instance.Index)] = $"node {instance.Node} is {nodes.FirstOrDefault(n => n.Name == instance.Node)?.Condition.ToString() ?? "gone"}";
            }
            else if (evacuation.Leaves(instance.Node))
            {
                evacuation.TakeOut(pass, instance, [.. current.Where(i => i.Role == instance.Role)]);
                keep.Add(instance);
            }
            else if (instance.Restarts >= options.RestartsBeforeMove)
            {
                moving[(instance.Role, instance.Index)] = $"it restarted {instance.Restarts} times on node {instance.Node}";
            }
            else
            {
                HostEvacuation.Return(pass, instance, revision);
                keep.Add(instance);
            }
        }

        var tenant = service.Tenant;
        foreach (var instance in keep)
        {
            state.Restore(PlacementCache.ToPlacement(state, tenant, instance));
        }

        var failures = new List<string>();
        var placed = new HashSet<(string, int)>();
        foreach (var role in model.Definition.Roles)
        {
            var count = (model.Configuration.FindRole(role.Name)?.Instances ?? 0) + surge.GetValueOrDefault(role.Name);
            // Which of the wanted indexes are held, in a flag per index rather than a set: made for every role of every pass.
            var present = new bool[count];
            foreach (var instance in keep)
            {
                if ((uint)instance.Index < (uint)count && instance.Role == role.Name)
                {
                    present[instance.Index] = true;
                }
            }

            var missing = new List<int>();
            for (var i = 0; i < count; i++)
            {
                if (!present[i])
                {
                    missing.Add(i);
                }
            }
            if (missing.Count == 0)
            {
                continue;
            }

            // An instance that keeps faulting on a node goes elsewhere: its node takes nothing in this pass.
            var avoided = pass.Before.Where(i => i.Role == role.Name && i.Restarts >= options.RestartsBeforeMove && ready.Contains(i.Node) && !evacuation.Leaves(i.Node)).Select(i => i.Node).Distinct().ToList();
            foreach (var node in avoided)
            {
                state.SetCondition(node, Placement.Cluster.NodeCondition.Draining);
            }

            PlacementResult result;
            try
            {
                result = new IndexedAllocator(state).Place(new PlacementRequest
                {
                    Role = new RoleKey(tenant, service.Name, role.Name),
                    Cpus = role.Size.Cores,
                    MemoryMiB = role.Size.MemoryMiB,
                    Instances = [.. missing.Select(i => new InstanceSlot(i, i % model.UpgradeDomains))],
                    Constraints = role.Constraints,
                    Driver = Model.Definition.DriverNames.Of(role.Driver),
                });
            }
            finally
            {
                foreach (var node in avoided)
                {
                    state.SetCondition(node, Placement.Cluster.NodeCondition.Ready); // the view outlives the pass
                }
            }

            foreach (var placement in result.Placed)
            {
                var before = pass.Before.FirstOrDefault(i => (i.Role, i.Index) == (role.Name, placement.Index));
                var record = new InstanceRecord
                {
                    Service = service.Name,
                    Role = role.Name,
                    Index = placement.Index,
                    UpgradeDomain = placement.UpgradeDomain,
                    Node = placement.Node,
                    Cpus = placement.Cpus,
                    MemoryMiB = placement.MemoryMiB,
                    Generation = ServicePass.NewRun,
                    Revision = revision,
                };
                pass.Place(record);
                placed.Add((role.Name, placement.Index));
                pass.Events.Add(moving.TryGetValue((role.Name, placement.Index), out var why)
                    ? (EventKind.InstanceMoved, record.Id, $"moved from node {before?.Node} to node {record.Node} because {why}")
                    : (EventKind.InstancePlaced, record.Id, $"placed on node {record.Node}, CPUs {string.Join(',', record.Cpus)}, {record.MemoryMiB} MiB, revision {revision}"));
            }

            failures.AddRange(result.Unplaced.Select(u => $"{service.Name}/{role.Name}/{u.Index}: {u.Why}"));
            unplaced?.AddRange(result.Unplaced.Select(u => u.Why));
        }

        // Instances being moved that could not be placed again are removed all the same: their node is gone.
        foreach (var (role, index) in moving.Keys.Where(k => !placed.Contains(k)))
        {
            pass.Remove(role, index);
        }

        return failures;
    }

    /// <summary>
    /// An unwanted instance leaves the load balancer and DNS first and is removed (its agent stops it) once every
    /// data plane has been told; on a node that is not Ready there is nothing to drain. True while it still runs.
    /// </summary>
    private static bool Release(ServicePass pass, InstanceRecord instance, IReadOnlySet<string> ready, Func<bool> published)
    {
        if (ready.Contains(instance.Node) && !instance.Draining)
        {
            pass.Mark(instance, instance.Revision, draining: true);
            pass.Events.Add((EventKind.InstanceDraining, instance.Id, "no longer in the configuration: out of the load balancer and DNS, stopping once they have been told"));
            pass.Requeue(UpgradeWalker.PublishPoll);
            return true;
        }

        if (ready.Contains(instance.Node) && !published())
        {
            pass.Requeue(UpgradeWalker.PublishPoll);
            return true;
        }

        pass.Remove(instance.Role, instance.Index);
        pass.Events.Add((EventKind.InstanceRemoved, instance.Id, "removed: no longer in the configuration"));
        return false;
    }
}
