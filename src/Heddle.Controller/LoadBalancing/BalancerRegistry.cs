using System.Net;
using Heddle.Contracts.Api;
using Heddle.Controller.Store;

namespace Heddle.Controller.LoadBalancing;

/// <summary>
/// The load balancers as members of the cluster: each heartbeat is recorded (any controller takes it: the record is in
/// the store), answered with the VIPs the balancer owns in ARP mode (<see cref="VipOwnership"/>), and checked for
/// squatted VIPs (<see cref="VipConflicts"/>). A balancer that stops leaves at once; one that vanishes is listed Gone
/// after <see cref="BalancerTiming.Gone"/> and its reports stop counting.
/// </summary>
public sealed class BalancerRegistry(IClusterStore store, LoadBalancerConfigSource config, VipConflicts conflicts, EventLog events, TimeProvider time, BalancerTiming timing)
{
    public BalancerTiming Timing => timing;

    /// <summary>Records a heartbeat; throws <see cref="BalancerRefusedException"/> (nothing changed) for one that is malformed or names another's balancer.</summary>
    public async Task<BalancerLease> HeartbeatAsync(BalancerHeartbeat heartbeat, CancellationToken cancellationToken = default)
    {
        Validate(heartbeat);
        var now = time.GetUtcNow();
        var previous = store.GetBalancer(heartbeat.Name);
        if (previous is not null && previous.Instance != heartbeat.Instance && previous.Address != heartbeat.Address && now - previous.HeardAt <= timing.Gone)
        {
            throw new BalancerRefusedException(
                $"another load balancer named '{heartbeat.Name}' reports from {previous.Address} (this one is at {heartbeat.Address}); give each its own --name");
        }

        var record = new BalancerRecord(heartbeat.Name, heartbeat.Instance, heartbeat.Address, heartbeat.Mode, heartbeat.Interface, heartbeat.Healthy, heartbeat.Detail,
            heartbeat.Announced, heartbeat.ConfigVersion, heartbeat.Problems, now);
        var served = config.Current.Listeners.Select(l => l.Vip).ToHashSet(StringComparer.Ordinal);
        var before = store.ListVipOwners().Where(o => o.Balancer == heartbeat.Name).Select(o => o.Vip).ToHashSet(StringComparer.Ordinal);
        var owners = await store.HeartbeatBalancerAsync(record,
            current => VipOwnership.Decide(record, store.ListBalancers(), current, served, now, timing), cancellationToken);
        var owned = owners.Where(o => o.Balancer == heartbeat.Name).Select(o => o.Vip).Order(StringComparer.Ordinal).ToList();

        if (previous is null || previous.Instance != heartbeat.Instance || previous.GoneNoticed)
        {
            await events.AddAsync(EventKind.BalancerJoined, heartbeat.Name, $"load balancer {heartbeat.Name} at {heartbeat.Address} ({Describe(heartbeat.Mode, heartbeat.Interface)}) reports{(previous?.GoneNoticed == true && previous.Instance == heartbeat.Instance ? " again" : string.Empty)}");
        }

        foreach (var vip in owned.Where(v => !before.Contains(v)))
        {
            await events.AddAsync(EventKind.VipOwnerChanged, vip, $"{heartbeat.Name} at {heartbeat.Address} answers ARP for {vip} now");
        }

        if (heartbeat.Problems.Count > 0)
        {
            await conflicts.CheckAsync(record);
        }

        return new BalancerLease(owned, (int)timing.Lease.TotalMilliseconds, (int)timing.Heartbeat.TotalMilliseconds);
    }

    /// <summary>A balancer that stops (it stopped answering for its VIPs first): forgotten, its VIPs released for the others at once.</summary>
    public async Task<bool> LeaveAsync(string name, CancellationToken cancellationToken = default)
    {
        if (!await store.RemoveBalancerAsync(name, cancellationToken))
        {
            return false;
        }

        await events.AddAsync(EventKind.BalancerLeft, name, $"load balancer {name} stopped");
        return true;
    }

    /// <summary>On the leader: says once, in the events, when a balancer stops heart-beating without leaving (killed, cut off).</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            var now = time.GetUtcNow();
            foreach (var gone in store.ListBalancers().Where(b => !b.GoneNoticed && now - b.HeardAt > timing.Gone))
            {
                try
                {
                    if (await store.MarkBalancerGoneAsync(gone.Name, gone.HeardAt, stoppingToken))
                    {
                        await events.AddAsync(EventKind.BalancerGone, gone.Name,
                            $"load balancer {gone.Name} at {gone.Address} not heard for {(now - gone.HeardAt).TotalSeconds:0} s (killed, or cut off); its reports no longer count{(gone.Mode == BalancerModes.Arp ? " and the VIPs it owned have gone to the others" : string.Empty)}",
                            cancellationToken: stoppingToken);
                    }
                }
                catch (Store.Kv.KvUnavailableException)
                {
                    // the store is away: the next tick tries again
                }
            }
        }
    }

    public IReadOnlyList<BalancerStatus> List()
    {
        var now = time.GetUtcNow();
        var owners = store.ListVipOwners();
        return [.. store.ListBalancers().OrderBy(b => b.Name, StringComparer.Ordinal).Select(b => new BalancerStatus(
            b.Name, b.Address, b.Mode, b.Interface,
            now - b.HeardAt > timing.Gone ? "Gone" : b.Healthy ? "Up" : "Unhealthy",
            b.Detail, b.HeardAt, b.Announced,
            [.. owners.Where(o => o.Balancer == b.Name && now - o.Renewed <= timing.Lease + timing.ClockSkew).Select(o => o.Vip).Order(StringComparer.Ordinal)],
            b.Problems))];
    }

    private static string Describe(string mode, string? network) => mode switch
    {
        BalancerModes.Arp => $"arp on {network}",
        BalancerModes.Bgp => "bgp",
        _ => "VIPs routed by the operator",
    };

    private static void Validate(BalancerHeartbeat h)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(h.Name) || h.Name.Length > 63 || !h.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_'))
        {
            errors.Add($"name '{h.Name}': 1 to 63 letters, digits, '-', '.' or '_'");
        }

        if (string.IsNullOrEmpty(h.Instance) || h.Instance.Length > 64)
        {
            errors.Add("instance: 1 to 64 characters");
        }

        if (!IPAddress.TryParse(h.Address ?? string.Empty, out _))
        {
            errors.Add($"address '{h.Address}': not an IP address");
        }

        if (h.Mode is not (BalancerModes.None or BalancerModes.Arp or BalancerModes.Bgp))
        {
            errors.Add($"mode '{h.Mode}': none, arp or bgp");
        }

        if (h.Interface is { Length: > 15 } || (h.Mode == BalancerModes.Arp && string.IsNullOrEmpty(h.Interface)))
        {
            errors.Add("interface: an ARP balancer names its interface (up to 15 characters)");
        }

        if (h.Detail is null || h.Detail.Length > 500)
        {
            errors.Add("detail: up to 500 characters");
        }

        if (h.Announced is null || h.Announced.Count > 100_000 || h.Problems is null || h.Problems.Count > 100_000)
        {
            errors.Add("announced and problems: lists of up to 100,000");
        }
        else if (h.Problems.Any(p => p is null || p.Service is null || p.Vip is null || p.Reason is null || p.Reason.Length > 500
                     || p.Kind is not (ListenerProblemKinds.InUse or ListenerProblemKinds.NotLocal or ListenerProblemKinds.Other)))
        {
            errors.Add("problems: each names service, vip, port, reason (up to 500 characters) and kind (in-use, not-local or other)");
        }

        if (errors.Count > 0)
        {
            throw new BalancerRefusedException($"bad load-balancer heartbeat: {string.Join("; ", errors)}");
        }
    }
}

public sealed class BalancerRefusedException(string message) : Exception(message);
