using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Heddle.Contracts.Api;
using Heddle.Controller.Store;

namespace Heddle.Controller.LoadBalancing;

/// <summary>
/// Who answers ARP for each VIP: one owner among the healthy ARP balancers, held with a lease that its heartbeats renew.
/// A VIP without a live owner goes to the balancer that rendezvous hashing prefers among those that can serve it (the
/// same balancer whichever controller decides); a live owner keeps its VIPs (no moves while it works). Never two owners:
/// a balancer stops answering <see cref="BalancerTiming.OwnerMargin"/> before its lease ends by its own clock, counted
/// from when it sent the heartbeat that renewed it; another may take the VIP only <see cref="BalancerTiming.ClockSkew"/>
/// after the lease ended by the controllers' clocks. A balancer that reports itself unhealthy, or unable to open the VIP,
/// has stopped answering for it already and releases it at once; so does one that stops (it leaves).
/// </summary>
public static class VipOwnership
{
    /// <summary>The owner changes a heartbeat from <paramref name="self"/> makes.</summary>
    /// <param name="balancers">Every balancer record, <paramref name="self"/> with this heartbeat's.</param>
    /// <param name="served">Every VIP the balancers are configured to serve now.</param>
    public static IReadOnlyList<OwnerChange> Decide(BalancerRecord self, IReadOnlyList<BalancerRecord> balancers, IReadOnlyList<VipOwnerRecord> owners,
        IReadOnlyCollection<string> served, DateTimeOffset now, BalancerTiming timing)
    {
        var changes = new List<OwnerChange>();
        var byVip = owners.ToDictionary(o => o.Vip, StringComparer.Ordinal);
        foreach (var owner in owners.Where(o => o.Balancer == self.Name && !served.Contains(o.Vip)))
        {
            changes.Add(new OwnerChange(owner.Vip, null)); // its service is gone
        }

        if (self.Mode != BalancerModes.Arp)
        {
            changes.AddRange(owners.Where(o => o.Balancer == self.Name && served.Contains(o.Vip)).Select(o => new OwnerChange(o.Vip, null)));
            return changes;
        }

        var candidates = balancers.Where(b => b.Name != self.Name).Append(self)
            .Where(b => b.Mode == BalancerModes.Arp && b.Healthy && now - b.HeardAt <= timing.Lease)
            .ToList();
        foreach (var vip in served)
        {
            var able = candidates.Where(b => CanServe(b, vip)).ToList();
            byVip.TryGetValue(vip, out var owner);
            if (owner?.Balancer == self.Name)
            {
                changes.Add(new OwnerChange(vip, CanServe(self, vip) && self.Healthy ? owner with { Renewed = now } : null));
                continue;
            }

            var ownerLive = owner is not null && now - owner.Renewed <= timing.Lease + timing.ClockSkew;
            if (!ownerLive && able.Count > 0 && Preferred(vip, able).Name == self.Name)
            {
                changes.Add(new OwnerChange(vip, new VipOwnerRecord(vip, self.Name, now, now)));
            }
        }

        return changes;
    }

    /// <summary>Whether the balancer opened every port of the VIP (it reports each one it could not).</summary>
    public static bool CanServe(BalancerRecord balancer, string vip) => !balancer.Problems.Any(p => p.Vip == vip);

    /// <summary>Rendezvous (highest random weight) hashing: every controller picks the same balancer for a VIP from the same candidates.</summary>
    public static BalancerRecord Preferred(string vip, IReadOnlyList<BalancerRecord> candidates) =>
        candidates.MaxBy(b => BinaryPrimitives.ReadUInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes($"{vip}\n{b.Name}"))))!;
}

/// <summary>The balancer modes: how the VIPs reach a balancer.</summary>
public static class BalancerModes
{
    /// <summary>The operator routes the VIPs to the balancer's host (or the VIPs are its own addresses).</summary>
    public const string None = "none";

    public const string Arp = "arp";

    public const string Bgp = "bgp";
}

/// <summary>The heartbeat and lease times of balancers.</summary>
/// <param name="Heartbeat">How often a balancer reports.</param>
/// <param name="Lease">How long a VIP stays a balancer's after a renewal; also how long a balancer counts as a candidate after its last heartbeat.</param>
/// <param name="OwnerMargin">How much before its lease ends (by its clock, from the heartbeat's sending) an owner stops answering.</param>
/// <param name="ClockSkew">How far the controllers' clocks may differ: another owner waits this long past the lease.</param>
/// <param name="Gone">A balancer unheard this long is listed Gone and its reports no longer count.</param>
public sealed record BalancerTiming(TimeSpan Heartbeat, TimeSpan Lease, TimeSpan OwnerMargin, TimeSpan ClockSkew, TimeSpan Gone)
{
    /// <summary>
    /// Heartbeats every 0.4 s, leases of 1.5 s: an owner killed loses its VIPs 1.5–1.9 s after its last heartbeat by the
    /// controllers' clocks, and the next heartbeat of another takes them (within 0.4 s), so a VIP answers again within about
    /// 2.5 s of a kill. An owner that cannot reach a controller for 1.25 s stops answering.
    /// </summary>
    public static BalancerTiming Default { get; } = new(TimeSpan.FromMilliseconds(400), TimeSpan.FromMilliseconds(1500), TimeSpan.FromMilliseconds(250),
        TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(10));
}
