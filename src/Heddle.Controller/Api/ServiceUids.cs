using Heddle.Contracts;
using Heddle.Controller.Store;

namespace Heddle.Controller.Api;

/// <summary>
/// Which uid a deployment runs as: one of the controller's range (<see cref="ControllerOptions.UidRange"/>) that no
/// other deployment of the cluster holds, chosen once and stored with it, so two services never share a uid on any
/// host however many agents run there. The store refuses a uid another deployment took meanwhile (a key created on
/// condition of absence), as it does a VIP.
/// </summary>
public static class ServiceUids
{
    /// <summary>The lowest uid of the range no deployment holds (nor <paramref name="besides"/> names); null when every one is taken.</summary>
    public static int? Free(IClusterStore store, UidRange range, IReadOnlySet<int>? besides = null)
    {
        var taken = store.ListServices().Select(s => s.Uid).Concat(besides ?? Enumerable.Empty<int>()).Where(range.Contains).ToHashSet();
        if (taken.Count >= range.Count)
        {
            return null;
        }

        for (var uid = range.First; uid <= range.Last; uid++)
        {
            if (!taken.Contains(uid))
            {
                return uid;
            }
        }

        return null;
    }

    public static string Exhausted(UidRange range) => $"every uid of the range {range} is held by a service ({range.Count} services); delete a service or widen the controller's --uid-range";

    /// <summary>Gives each deployment an earlier controller wrote without a uid one of its own (once, at the first pass that meets it).</summary>
    public static async Task<int?> EnsureAsync(IClusterStore store, ServiceRecord service, UidRange range, CancellationToken cancellationToken = default)
    {
        for (var attempt = 0; service.Uid == 0 && attempt < 10; attempt++)
        {
            if (Free(store, range) is not { } uid)
            {
                return null;
            }

            if (await store.AssignUidAsync(service.Name, uid, cancellationToken))
            {
                return uid;
            }

            service = store.GetService(service.Name) ?? service;
        }

        return service.Uid == 0 ? null : service.Uid;
    }
}
