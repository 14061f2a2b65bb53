using Heddle.Contracts.Api;
using Heddle.Controller.Quotas;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Heddle.Controller.Api;

/// <summary>
/// /v1/quotas: an admin sets (PUT, whole), resets (DELETE: back to the default) and reads every tenant's quota; a
/// tenant reads its own only, as a Kubernetes namespace's users read its ResourceQuota. Changes are admin-only in
/// <see cref="Scopes"/>.
/// </summary>
internal static class QuotaEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/quotas", (Caller caller, TenantQuotas quotas) =>
            Results.Ok(caller.IsAdmin ? quotas.Tenants().Select(quotas.Status).ToList() : [quotas.Status(caller.Tenant!)]));
        app.MapGet("/v1/quotas/{tenant}", (string tenant, Caller caller, TenantQuotas quotas) =>
        {
            if (!caller.Owns(tenant))
            {
                return Problems.Forbidden($"a token of {caller} reads only its own quota ('heddle quota show'); nothing about tenant '{Printable.Of(tenant)}' is told");
            }

            return Caller.TenantNameError(tenant) is { } error
                ? Problems.Invalid(ProblemTypes.InvalidRequest, "Bad tenant name", error)
                : Results.Ok(quotas.Status(tenant));
        });
        app.MapPut("/v1/quotas/{tenant}", SetAsync);
        app.MapDelete("/v1/quotas/{tenant}", async (string tenant, IQuotaStore store, TenantQuotas quotas, EventLog events) =>
        {
            if (Caller.TenantNameError(tenant) is { } error)
            {
                return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad tenant name", error);
            }

            if (await store.DeleteQuotaAsync(tenant))
            {
                var now = quotas.Status(tenant);
                await events.AddAsync(EventKind.QuotaChanged, Subject(tenant), $"tenant {tenant}'s quota reset: {now.Limits} ({now.Source})");
            }

            return Results.Ok(quotas.Status(tenant));
        });
    }

    private static async Task<IResult> SetAsync(string tenant, QuotaLimits? limits, IQuotaStore store, TenantQuotas quotas, EventLog events, TimeProvider time)
    {
        if (Caller.TenantNameError(tenant) is { } error)
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad tenant name", $"{error}; nothing was changed");
        }

        if (limits is null)
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad quota", "the request carries no quota; send {\"cores\": 8, \"instances\": 16, \"vips\": 2, \"diskMiB\": 16384} (null: no limit); nothing was changed");
        }

        if (limits.Error() is { } bad)
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad quota", $"{bad}; nothing was changed");
        }

        await store.PutQuotaAsync(new QuotaRecord(tenant, limits, time.GetUtcNow()));
        var status = quotas.Status(tenant);
        var over = QuotaLimits.Names.Where(n => limits[n] is { } limit && status.Used[n] > limit).ToList();
        await events.AddAsync(EventKind.QuotaChanged, Subject(tenant),
            $"tenant {tenant}'s quota set: {limits}{(over.Count > 0 ? $"; it holds more {string.Join(", ", over)} than that already: nothing is stopped, but nothing more is accepted" : string.Empty)}");
        return Results.Ok(status);
    }

    /// <summary>An event subject no service name can equal (':' is not in a DNS label), so no tenant sees another's quota events.</summary>
    private static string Subject(string tenant) => $"quota:{tenant}";
}
