using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Model.Definition;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>
/// `heddle swap`: the deployment in staging becomes production and the one in production staging, in one store
/// transaction that exchanges their slots and VIPs (instances, DNS names and VIP addresses stay as they are). The
/// answer comes once the load balancer and DNS followers have been sent the new view, so new connections to the
/// production VIP reach only the new instances from then on; established ones drain as for any backend change.
/// </summary>
public sealed class Swaps(IClusterStore store, ServiceModels models, EventLog events, Publishing.IPublicationBarrier barrier, TimeProvider time)
{
    private const int Attempts = 5;
    private static readonly TimeSpan PublishWaitLimit = TimeSpan.FromSeconds(5);

    internal async Task<IResult> SwapAsync(string name, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            var slots = store.ListServices().Where(s => s.Family == name).ToList();
            if (slots.Count == 0)
            {
                return ApiEndpoints.UnknownService(name, store);
            }

            var production = slots.FirstOrDefault(s => s.Slot == Slots.Production);
            var staging = slots.FirstOrDefault(s => s.Slot == Slots.Staging);
            if (Refusal(name, production, staging) is { } refusal)
            {
                return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Swap not possible", $"{refusal}; nothing was changed");
            }

            if (!await store.SwapSlotsAsync(production!.Name, production.Version, staging!.Name, staging.Version, cancellationToken))
            {
                continue;
            }

            await events.AddAsync(EventKind.SlotsSwapped, name,
                $"swapped: production is now revision {staging.Revision} ({staging.Name}, VIP {production.Vip ?? "none"}), staging revision {production.Revision} ({production.Name}, VIP {staging.Vip ?? "none"})", EventOwner.Of(production));
            var started = time.GetUtcNow();
            while (!barrier.Published() && time.GetUtcNow() - started < PublishWaitLimit)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(5), time, cancellationToken);
            }

            return Results.Ok(new SwapDone(name, staging.Name, staging.Revision, production.Vip, production.Name, production.Revision, staging.Vip));
        }

        return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Changed meanwhile", $"service {name} kept changing while it was being swapped; try again");
    }

    /// <summary>Why the two slots cannot be swapped now, in a sentence; null when they can.</summary>
    private string? Refusal(string name, ServiceRecord? production, ServiceRecord? staging)
    {
        if (staging is null)
        {
            return $"service {name} has no staging slot to swap with; deploy the new version there first with 'heddle deploy PACKAGE --config CONFIG --slot staging'";
        }

        if (production is null)
        {
            return $"service {name} has nothing in production to swap with its staging slot; deploy it to production (without --slot)";
        }

        foreach (var slot in new[] { production, staging })
        {
            if (slot.Deleting)
            {
                return $"the {slot.Slot} slot of {name} is being deleted";
            }

            if (slot.Walk is { IsFinished: false } walk)
            {
                return $"the {slot.Slot} slot of {name} has an upgrade in progress (revision {walk.Previous} → {walk.Revision}, {walk.Outcome}); wait for it to end or roll it back "
                    + $"('heddle upgrade status {name}{(slot.Slot == Slots.Staging ? " --slot staging" : string.Empty)}')";
            }
        }

        if (models.For(production) is not { } productionModel || models.For(staging) is not { } stagingModel)
        {
            return $"the package of one of {name}'s slots is missing from the controller";
        }

        var instances = store.ListInstances(staging.Name);
        var desired = stagingModel.Configuration.Roles.Sum(r => r.Instances);
        var notReady = instances.Where(i => i.State != InstanceState.Ready || i.Draining || i.Revision != staging.Revision).Select(i => $"{i.Id} is {i.State}").ToList();
        if (notReady.Count > 0 || instances.Count < desired)
        {
            var missing = instances.Count < desired ? [$"{desired - instances.Count} not placed yet"] : new List<string>();
            return $"not every instance of {name}'s staging slot is Ready ({string.Join(", ", notReady.Concat(missing).Take(5))}); swap once 'heddle status {name}' shows staging all Ready";
        }

        var productionEndpoints = InputEndpoints(productionModel.Definition);
        var stagingEndpoints = InputEndpoints(stagingModel.Definition);
        if (!productionEndpoints.SetEquals(stagingEndpoints))
        {
            var onlyProduction = productionEndpoints.Except(stagingEndpoints).ToList();
            var onlyStaging = stagingEndpoints.Except(productionEndpoints).ToList();
            return $"the slots of {name} do not have the same input endpoints (production only: {Describe(onlyProduction)}; staging only: {Describe(onlyStaging)}): "
                + "a swap must not change what the VIP listens on; deploy staging with the same endpoints";
        }

        return null;
    }

    private static HashSet<string> InputEndpoints(ServiceDefinition definition) =>
    [
        .. definition.Roles.SelectMany(r => r.Endpoints.Where(e => e.Kind == EndpointKind.Input)
            .Select(e => $"{r.Name}.{e.Name} {e.Protocol.ToString().ToLowerInvariant()} port {e.Port}")),
    ];

    private static string Describe(List<string> endpoints) => endpoints.Count == 0 ? "none" : string.Join(", ", endpoints.Order(StringComparer.Ordinal));
}
