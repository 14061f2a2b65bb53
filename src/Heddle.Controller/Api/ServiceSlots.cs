using Heddle.Controller.Store;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>
/// Finds the deployment a request means: users name a service and, optionally, a slot (`?slot=staging`; production
/// by default). A deployment's own key (hello@2, as its instance ids show) is accepted too.
/// </summary>
internal static class ServiceSlots
{
    /// <summary>The deployment, or the answer to give when there is none (an unknown slot, service or slot).</summary>
    public static (ServiceRecord? Service, IResult? Problem) Find(IClusterStore store, Trust.Caller caller, string name, string? slot)
    {
        if (slot is not null && !Slots.IsKnown(slot))
        {
            return (null, Problems.Invalid(Contracts.Api.ProblemTypes.InvalidModel, "Unknown slot", $"'{slot}' is not a slot; a service has '{Slots.Production}' (the default) and '{Slots.Staging}'"));
        }

        var services = ApiEndpoints.Visible(store, caller).ToList();
        var wanted = slot ?? Slots.Production;
        var found = services.FirstOrDefault(s => s.Family == name && s.Slot == wanted)
            ?? (slot is null ? services.FirstOrDefault(s => s.Name == name) : null);
        if (found is not null)
        {
            return (found, null);
        }

        return services.Any(s => s.Family == name)
            ? (null, Problems.NotFound($"service {name} has no {wanted} slot; deploy one with 'heddle deploy PACKAGE --config CONFIG --slot {wanted}'"))
            : (null, ApiEndpoints.UnknownService(name, store, caller));
    }

    /// <summary>The key for a new deployment of <paramref name="family"/>: its own name while free, then family@2, family@3, ...</summary>
    public static string FreeKey(IClusterStore store, string family)
    {
        var taken = store.ListServices().Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        if (!taken.Contains(family))
        {
            return family;
        }

        for (var n = 2; ; n++)
        {
            if (!taken.Contains($"{family}@{n}"))
            {
                return $"{family}@{n}";
            }
        }
    }
}
