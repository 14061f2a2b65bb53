using Heddle.Contracts.Api;
using Heddle.Controller.Store;

namespace Heddle.Controller.Quotas;

/// <summary>
/// Each tenant's quota as it applies now (set by an admin, else the controller's default; the admin's own tenant has
/// none unless one is set) and what the tenant's deployments hold, read fresh from the store for each question.
/// </summary>
public sealed class TenantQuotas(IClusterStore store, IQuotaStore quotas, ITrustStore trust, ServiceModels models, ControllerOptions options)
{
    /// <summary>The tenant an admin's deployments belong to when the admin names none.</summary>
    public const string AdminTenant = Api.ApiEndpoints.DefaultTenant;

    public (QuotaLimits Limits, string Source) LimitsOf(string tenant) =>
        quotas.GetQuota(tenant) is { } set ? (set.Limits, QuotaSources.Set)
        : tenant == AdminTenant ? (QuotaLimits.Unlimited, QuotaSources.AdminTenant)
        : (options.DefaultQuota, QuotaSources.Default);

    /// <summary>What a tenant's deployments hold now, over every service and slot.</summary>
    public QuotaUsage UsageOf(string tenant) =>
        store.ListServices().Where(s => s.Tenant == tenant).Aggregate(QuotaUsage.Zero, (sum, s) => sum + HeldBy(s));

    public QuotaStatus Status(string tenant)
    {
        var (limits, source) = LimitsOf(tenant);
        return new QuotaStatus(tenant, limits, source, UsageOf(tenant));
    }

    /// <summary>Every tenant the cluster knows of: the admin's, those with services, with a quota set, or with a token.</summary>
    public IReadOnlyList<string> Tenants() =>
        [.. store.ListServices().Select(s => s.Tenant)
            .Concat(quotas.ListQuotas().Select(q => q.Tenant))
            .Concat(trust.ListTokens().Where(t => t.Kind == TokenKinds.Api && t.Tenant is not null).Select(t => t.Tenant!))
            .Append(AdminTenant)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <summary>
    /// Why making <paramref name="current"/> (null: a new deployment) hold <paramref name="next"/> is refused by the
    /// tenant's quota, or null when it fits or the tenant has no limit.
    /// </summary>
    /// <param name="takesVip">Whether the change gives the deployment a VIP it does not hold yet.</param>
    /// <param name="action">"deploy", "scale" or "rollback", for the sentence.</param>
    public string? Check(string tenant, ServiceRecord? current, ServiceModel next, bool takesVip, string action)
    {
        var (limits, _) = LimitsOf(tenant);
        if (limits == QuotaLimits.Unlimited)
        {
            return null;
        }

        var inUse = UsageOf(tenant);
        var held = current is null ? QuotaUsage.Zero : HeldBy(current);
        var after = inUse - held + QuotaArithmetic.Of(next.Definition, next.Configuration, vip: current?.Vip is not null || takesVip);
        return QuotaArithmetic.Refusal(tenant, limits, inUse, after, action);
    }

    /// <summary>Whether deployments of the tenant are checked against a quota (and so accepted one at a time).</summary>
    public bool IsLimited(string tenant) => LimitsOf(tenant).Limits != QuotaLimits.Unlimited;

    private QuotaUsage HeldBy(ServiceRecord service)
    {
        var model = models.For(service);
        return !service.Deleting && model is not null
            ? QuotaArithmetic.Of(model.Definition, model.Configuration, service.Vip is not null)
            : QuotaArithmetic.Of(store.ListInstances(service.Name), model?.Definition, service.Vip is not null);
    }
}
