using Heddle.Contracts.Api;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>
/// Load balancers as members: a record per balancer (<c>balancers/</c>) rewritten by each heartbeat, the owner of each
/// VIP served by ARP (<c>vip-owners/</c>) claimed and renewed on condition that nobody changed it meanwhile, and the
/// addresses found squatted (<c>vip-unusable/</c>), which are not handed out again.
/// </summary>
public sealed partial class KvClusterStore
{
    private const int HeartbeatRetries = 3;

    public IReadOnlyList<BalancerRecord> ListBalancers() => ReadAll<BalancerRecord>("balancers/");

    public BalancerRecord? GetBalancer(string name) => Read<BalancerRecord>(BalancerKey(name));

    public IReadOnlyList<VipOwnerRecord> ListVipOwners() => ReadAll<VipOwnerRecord>("vip-owners/");

    public async Task<IReadOnlyList<VipOwnerRecord>> HeartbeatBalancerAsync(BalancerRecord balancer, Func<IReadOnlyList<VipOwnerRecord>, IReadOnlyList<OwnerChange>> decide,
        CancellationToken cancellationToken = default)
    {
        for (var attempt = 0; ; attempt++)
        {
            var entries = _mirror.List("vip-owners/");
            var current = entries.Select(Decode<VipOwnerRecord>).ToList();
            var revisions = entries.ToDictionary(e => e.Key, e => e.ModRevision, StringComparer.Ordinal);
            var changed = decide(current);
            var writes = new Writes();
            writes.Put(BalancerKey(balancer.Name), balancer);
            var conditions = new List<KvCondition>();
            foreach (var change in changed)
            {
                var key = OwnerKey(change.Vip);
                conditions.Add(new KvCondition(key, revisions.GetValueOrDefault(key)));
                if (change.Owner is { } owner)
                {
                    writes.Put(key, owner);
                }
                else
                {
                    writes.Delete(key);
                }
            }

            if (await CommitAsync(conditions, writes.List, cancellationToken))
            {
                var after = current.ToDictionary(o => o.Vip, StringComparer.Ordinal);
                foreach (var change in changed)
                {
                    if (change.Owner is { } owner)
                    {
                        after[change.Vip] = owner;
                    }
                    else
                    {
                        after.Remove(change.Vip);
                    }
                }

                return [.. after.Values];
            }

            if (attempt == HeartbeatRetries)
            {
                // Another controller changed an owner under each attempt (its copy and ours differ for a moment): the
                // balancer is heard, and owns what it owned before; its next heartbeat tries again.
                await CommitAsync([], [Put(BalancerKey(balancer.Name), balancer)], cancellationToken);
                return current;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20 * (attempt + 1)), cancellationToken);
        }
    }

    public async Task<bool> RemoveBalancerAsync(string name, CancellationToken cancellationToken = default)
    {
        if (_mirror.Get(BalancerKey(name)) is null)
        {
            return false;
        }

        var writes = new Writes();
        writes.Delete(BalancerKey(name));
        var conditions = new List<KvCondition>();
        foreach (var entry in _mirror.List("vip-owners/"))
        {
            if (Decode<VipOwnerRecord>(entry).Balancer == name)
            {
                writes.Delete(entry.Key);
                conditions.Add(new KvCondition(entry.Key, entry.ModRevision));
            }
        }

        // An owner record claimed by another balancer meanwhile stays: only this balancer's are released.
        return await CommitAsync(conditions, writes.List, cancellationToken) || await CommitAsync([], [KvWrite.Delete(BalancerKey(name))], cancellationToken);
    }

    public async Task<bool> MarkBalancerGoneAsync(string name, DateTimeOffset heardAt, CancellationToken cancellationToken = default)
    {
        if (_mirror.Get(BalancerKey(name)) is not { } entry || Decode<BalancerRecord>(entry) is not { GoneNoticed: false } record || record.HeardAt != heardAt)
        {
            return false;
        }

        return await CommitAsync([new(entry.Key, entry.ModRevision)], [Put(entry.Key, record with { GoneNoticed = true })], cancellationToken);
    }

    public IReadOnlyList<UnusableVipRecord> ListUnusableVips() => ReadAll<UnusableVipRecord>("vip-unusable/");

    public async Task MarkVipUnusableAsync(UnusableVipRecord record, CancellationToken cancellationToken = default) =>
        await CommitAsync([], [Put($"vip-unusable/{record.Vip}", record)], cancellationToken);

    private static string BalancerKey(string name) => $"balancers/{name}";

    private static string OwnerKey(string vip) => $"vip-owners/{vip}";
}

/// <summary>A load balancer as its last heartbeat left it; <see cref="HeardAt"/> is the controller's clock when it arrived.</summary>
public sealed record BalancerRecord(string Name, string Instance, string Address, string Mode, string? Interface, bool Healthy, string Detail,
    IReadOnlyList<string> Announced, long ConfigVersion, IReadOnlyList<ListenerProblem> Problems, DateTimeOffset HeardAt)
{
    /// <summary>The leader said it was gone (an event, once): set on the record until its next heartbeat.</summary>
    public bool GoneNoticed { get; init; }
}

/// <summary>Which balancer answers ARP for a VIP, until <see cref="Renewed"/> plus the lease: only then may another take it.</summary>
public sealed record VipOwnerRecord(string Vip, string Balancer, DateTimeOffset Since, DateTimeOffset Renewed);

/// <summary>A VIP's new owner record, or (null) its release.</summary>
public sealed record OwnerChange(string Vip, VipOwnerRecord? Owner);

/// <summary>An address every balancer found bound by something else: not handed to a service again.</summary>
public sealed record UnusableVipRecord(string Vip, string Reason, DateTimeOffset Since);
