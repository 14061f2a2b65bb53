using Heddle.Contracts.Api;
using Heddle.Controller.Store;

namespace Heddle.Controller.LoadBalancing;

/// <summary>
/// What the balancers could not open, and what the controller does about it. Each balancer's heartbeat carries its
/// problems (<see cref="BalancerRecord.Problems"/>), and they count only while it is heard. A VIP:port that every live
/// balancer finds bound by something else (<see cref="ListenerProblemKinds.InUse"/>) is squatted: the controller says so
/// in the events, stops handing out that address (for good: it is recorded in the store), and gives the service another
/// VIP that DNS and the balancers follow — at most <see cref="MaxMoves"/> times in <see cref="MoveWindow"/>, after which
/// it stays and `status` says why. An address not on a balancer's host (<see cref="ListenerProblemKinds.NotLocal"/>)
/// is that balancer's configuration and never moves a VIP.
/// </summary>
public sealed class VipConflicts(IClusterStore store, VipPool pool, EventLog events, TimeProvider time, BalancerTiming timing)
{
    public const int MaxMoves = 3;
    public static readonly TimeSpan MoveWindow = TimeSpan.FromMinutes(10);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, List<DateTimeOffset>> _moves = new(StringComparer.Ordinal);
    private readonly HashSet<(string Service, string Vip, int Port)> _told = [];

    /// <summary>Addresses found squatted: never handed to a service again.</summary>
    public bool IsUnusable(string vip) => store.ListUnusableVips().Any(u => u.Vip == vip);

    /// <summary>The lowest usable address no deployment holds; null when the pool is exhausted.</summary>
    public string? FreeVip(IReadOnlySet<string>? besides = null)
    {
        var taken = store.ListVips();
        var unusable = store.ListUnusableVips().Select(u => u.Vip).ToHashSet(StringComparer.Ordinal);
        return pool.Candidates.FirstOrDefault(c => !taken.ContainsKey(c) && !unusable.Contains(c) && besides?.Contains(c) != true);
    }

    /// <summary>Why no VIP could be given, for people to read.</summary>
    public string Exhausted => $"the VIP pool {pool.Cidr} is exhausted: all {pool.Candidates.Count} addresses are in use";

    /// <summary>The balancers heard within the timeout.</summary>
    public IReadOnlyList<BalancerRecord> Live()
    {
        var now = time.GetUtcNow();
        return [.. store.ListBalancers().Where(b => now - b.HeardAt <= timing.Gone)];
    }

    /// <summary>Moves the services whose VIP every live balancer finds squatted (after a heartbeat that reports one).</summary>
    public async Task CheckAsync(BalancerRecord reporter)
    {
        var live = Live().Where(b => b.Name != reporter.Name).Append(reporter).ToList();
        foreach (var problem in reporter.Problems.Where(p => p.Kind == ListenerProblemKinds.InUse).DistinctBy(p => (p.Service, p.Vip)))
        {
            if (live.All(b => b.Problems.Any(p => p.Vip == problem.Vip && p.Port == problem.Port && p.Kind == ListenerProblemKinds.InUse)))
            {
                await ResolveAsync(problem, live.Count);
            }
        }
    }

    /// <summary>
    /// Why the service's VIP does not serve, or serves only from some balancers; null when every live balancer opened
    /// it (or no balancer ever reported). <see cref="Unserved"/> tells whether any balancer serves it at all.
    /// </summary>
    public string? ProblemFor(ServiceRecord service)
    {
        if (service.Vip is null)
        {
            return null;
        }

        var now = time.GetUtcNow();
        var all = store.ListBalancers();
        var live = all.Where(b => now - b.HeardAt <= timing.Gone).ToList();
        if (live.Count == 0)
        {
            return all.Count == 0
                ? null
                : $"no load balancer is up: {string.Join(", ", all.Select(b => $"{b.Name} last heard {(now - b.HeardAt).TotalSeconds:0} s ago"))}";
        }

        var failing = live.Select(b => (Balancer: b, Problem: b.Problems.FirstOrDefault(p => p.Service == service.Name && p.Vip == service.Vip)))
            .Where(x => x.Problem is not null).ToList();
        if (failing.Count == 0)
        {
            return null;
        }

        var reasons = string.Join("; ", failing.Select(x => $"{x.Balancer.Name} cannot listen on {x.Problem!.Vip}:{x.Problem.Port} ({x.Problem.Reason}){Advice(x.Balancer, x.Problem)}"));
        return failing.Count == live.Count
            ? $"no load balancer serves {service.Vip}: {reasons}"
            : $"served by {live.Count - failing.Count} of {live.Count} load balancers; {reasons}";
    }

    /// <summary>Whether balancers have reported and none that is up can open the service's VIP (or none is up): it answers nowhere.</summary>
    public bool Unserved(ServiceRecord service)
    {
        var all = store.ListBalancers();
        var live = Live();
        return service.Vip is not null && all.Count > 0 && live.All(b => b.Problems.Any(p => p.Service == service.Name && p.Vip == service.Vip));
    }

    private static string Advice(BalancerRecord balancer, ListenerProblem problem) => problem.Kind switch
    {
        ListenerProblemKinds.NotLocal => $": the VIP is not an address of {balancer.Name}'s host; run it with --announce arp or bgp, or route the VIP pool to it (ip route add local POOL dev lo)",
        ListenerProblemKinds.InUse => $": something else on {balancer.Name}'s host listens on port {problem.Port}",
        _ => string.Empty,
    };

    private async Task ResolveAsync(ListenerProblem problem, int balancers)
    {
        var service = store.GetService(problem.Service);
        if (service is null || service.Vip != problem.Vip || service.Deleting)
        {
            return; // the report is older than a move, a swap or a deletion
        }

        var now = time.GetUtcNow();
        var why = $"{(balancers == 1 ? "the load balancer" : $"all {balancers} load balancers")} cannot listen on {problem.Vip}:{problem.Port} ({problem.Reason})";
        string? giveUp = null;
        lock (_lock)
        {
            var moves = _moves.TryGetValue(service.Name, out var list) ? list : _moves[service.Name] = [];
            moves.RemoveAll(m => now - m > MoveWindow);
            if (moves.Count >= MaxMoves)
            {
                giveUp = _told.Add((service.Name, problem.Vip, problem.Port))
                    ? $"{why}; not moving {service.Name} again: it moved {moves.Count} times in {MoveWindow.TotalMinutes:0} min (does something listen on port {problem.Port} of every address?)"
                    : string.Empty;
            }
            else
            {
                moves.Add(now);
            }
        }

        if (giveUp is not null)
        {
            if (giveUp.Length > 0)
            {
                await events.AddAsync(EventKind.VipUnusable, service.Name, giveUp, EventOwner.Of(service));
            }

            return;
        }

        await store.MarkVipUnusableAsync(new UnusableVipRecord(problem.Vip, why, now));
        var next = FreeVip();
        if (next is null)
        {
            await events.AddAsync(EventKind.VipUnusable, service.Name, $"{why}; no free VIP is left to move the service to; widen --vip-pool", EventOwner.Of(service));
            return;
        }

        if (!await store.ChangeVipAsync(service.Name, problem.Vip, next))
        {
            return; // moved, swapped or deleted meanwhile (another controller took the same report): the balancers' next reports decide
        }

        await events.AddAsync(EventKind.VipMoved, service.Name,
            $"{service.Name} moved from VIP {problem.Vip} to {next}: {why}; something else bound it first, and that address is no longer handed out", EventOwner.Of(service));
    }
}
