using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>Quotas (under their tenant's name).</summary>
public sealed partial class KvClusterStore : IQuotaStore
{
    public QuotaRecord? GetQuota(string tenant) => Read<QuotaRecord>(Keys.Quota(tenant));

    public IReadOnlyList<QuotaRecord> ListQuotas() => [.. ReadAll<QuotaRecord>("quotas/").OrderBy(q => q.Tenant, StringComparer.Ordinal)];

    public Task PutQuotaAsync(QuotaRecord quota, CancellationToken cancellationToken = default) =>
        CommitAsync([], [Put(Keys.Quota(quota.Tenant), quota)], cancellationToken);

    public async Task<bool> DeleteQuotaAsync(string tenant, CancellationToken cancellationToken = default)
    {
        if (_mirror.Get(Keys.Quota(tenant)) is null)
        {
            return false;
        }

        await CommitAsync([], [KvWrite.Delete(Keys.Quota(tenant))], cancellationToken);
        return true;
    }

    public long TenantVersion(string tenant) => _mirror.Get(Keys.TenantAccepts(tenant))?.ModRevision ?? 0;
}
