using Heddle.Contracts.Agents;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;

namespace Heddle.Controller.Agents;

/// <summary>Derives a node's goal state from the store: every instance placed there of a service not being deleted.</summary>
public sealed class GoalStates(IClusterStore store, ServiceModels models)
{
    private long _version;

    public GoalState For(string node)
    {
        var goal = new GoalState { Version = Interlocked.Increment(ref _version) };
        var services = new Dictionary<string, ServiceRecord?>(StringComparer.Ordinal);
        foreach (var instance in store.ListInstancesOnNode(node))
        {
            if (!services.TryGetValue(instance.Service, out var service))
            {
                service = services[instance.Service] = store.GetService(instance.Service);
            }

            if (service is null || service.Deleting || models.For(service) is not { } model)
            {
                continue;
            }

            var item = new InstanceGoal
            {
                InstanceId = instance.Id,
                Service = instance.Service,
                Role = instance.Role,
                Index = instance.Index,
                UpgradeDomain = instance.UpgradeDomain,
                PackageSha256 = service.PackageSha256,
                PackagePath = $"/v1/packages/{service.PackageSha256}/content",
                MemoryMib = instance.MemoryMiB,
                Generation = instance.Generation,
            };
            item.Cpus.AddRange(instance.Cpus);
            foreach (var (name, value) in model.SettingsOf(instance.Role))
            {
                item.Settings[name] = value;
            }
            goal.Instances.Add(item);
        }

        return goal;
    }
}
