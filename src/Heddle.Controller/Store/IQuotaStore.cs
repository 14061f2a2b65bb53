using Heddle.Contracts.Api;

namespace Heddle.Controller.Store;

/// <summary>A tenant's quota as an admin set it. A tenant without one has the controller's default.</summary>
public sealed record QuotaRecord(string Tenant, QuotaLimits Limits, DateTimeOffset Updated);

/// <summary>The quotas admins set, by tenant. Reads from this controller's copy; writes commit before their task completes.</summary>
public interface IQuotaStore
{
    QuotaRecord? GetQuota(string tenant);

    IReadOnlyList<QuotaRecord> ListQuotas();

    /// <summary>Sets (or replaces) a tenant's quota.</summary>
    Task PutQuotaAsync(QuotaRecord quota, CancellationToken cancellationToken = default);

    /// <summary>Forgets a tenant's quota (it has the default again); false when none was set.</summary>
    Task<bool> DeleteQuotaAsync(string tenant, CancellationToken cancellationToken = default);
}
