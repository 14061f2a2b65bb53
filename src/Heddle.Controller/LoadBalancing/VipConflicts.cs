using Heddle.Contracts.Api;
using Heddle.Controller.Store;

namespace Heddle.Controller.LoadBalancing;

/// <summary>
/// What the load balancers could not open, and what the controller does about it. A VIP:port the balancer cannot
/// bind (an instance, or anything else on the host, bound it first) would leave the service unreachable while the
/// squatter answers in its place: the controller says so in the events and in `heddle status`, stops handing out
/// that address, and gives the service another VIP (DNS and the balancer follow). A service is moved at most
/// <see cref="MaxMoves"/> times in <see cref="MoveWindow"/>: when every address fails (something listens on the port
/// of every address, 0.0.0.0:port say) it stays where it is and `status` keeps saying why.
/// </summary>
/// <remarks>
/// Kept in memory: after a controller restart the balancers report again what they still cannot open. The
/// addresses found squatted are not handed out again by this controller process.
/// </remarks>
public sealed class VipConflicts(IClusterStore store, VipPool pool, EventLog events, TimeProvider time)
{
    public const int MaxMoves = 3;
    public static readonly TimeSpan MoveWindow = TimeSpan.FromMinutes(10);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, IReadOnlyList<ListenerProblem>> _reports = new(StringComparer.Ordinal);
    private readonly HashSet<string> _unusable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<DateTimeOffset>> _moves = new(StringComparer.Ordinal);
    private readonly HashSet<(string Service, string Vip, int Port)> _told = [];

    /// <summary>Addresses found squatted: never handed to a service again by this controller.</summary>
    public bool IsUnusable(string vip)
    {
        lock (_lock)
        {
            return _unusable.Contains(vip);
        }
    }

    /// <summary>The pool's addresses in order, without those found squatted: what a service may be given.</summary>
    public IEnumerable<string> UsableCandidates => pool.Candidates.Where(c => !IsUnusable(c));

    /// <summary>The lowest usable address no deployment holds; null when the pool is exhausted.</summary>
    public string? FreeVip()
    {
        var taken = store.ListVips();
        return UsableCandidates.FirstOrDefault(c => !taken.ContainsKey(c));
    }

    /// <summary>Why no VIP could be given, for people to read.</summary>
    public string Exhausted => $"the VIP pool {pool.Cidr} is exhausted: all {pool.Candidates.Count} addresses are in use";

    /// <summary>Takes a balancer's whole report (replacing its previous one) and moves the services it names.</summary>
    public async Task ReportAsync(LoadBalancerReport report)
    {
        List<ListenerProblem> fresh;
        lock (_lock)
        {
            var before = _reports.TryGetValue(report.Reporter, out var previous) ? previous : [];
            _reports[report.Reporter] = report.Problems;
            fresh = [.. report.Problems.Where(p => !before.Contains(p))];
            if (report.Problems.Count == 0)
            {
                _reports.Remove(report.Reporter);
            }
        }

        foreach (var problem in fresh.DistinctBy(p => (p.Service, p.Vip)))
        {
            await ResolveAsync(problem);
        }
    }

    /// <summary>Why the service's current VIP does not serve, if a balancer says it cannot open one of its ports.</summary>
    public string? ProblemFor(ServiceRecord service)
    {
        lock (_lock)
        {
            var problem = _reports.Values.SelectMany(r => r).FirstOrDefault(p => p.Service == service.Name && p.Vip == service.Vip);
            return problem is null ? null : $"the load balancer cannot listen on {problem.Vip}:{problem.Port} ({problem.Reason})";
        }
    }

    private async Task ResolveAsync(ListenerProblem problem)
    {
        var service = store.GetService(problem.Service);
        if (service is null || service.Vip != problem.Vip || service.Deleting)
        {
            return; // the report is older than a move, a swap or a deletion
        }

        var now = time.GetUtcNow();
        string? giveUp = null;
        lock (_lock)
        {
            _unusable.Add(problem.Vip);
            var moves = _moves.TryGetValue(service.Name, out var list) ? list : _moves[service.Name] = [];
            moves.RemoveAll(m => now - m > MoveWindow);
            if (moves.Count >= MaxMoves)
            {
                giveUp = _told.Add((service.Name, problem.Vip, problem.Port))
                    ? $"the load balancer cannot listen on {problem.Vip}:{problem.Port} ({problem.Reason}); not moving {service.Name} again: it moved {moves.Count} times in {MoveWindow.TotalMinutes:0} min (does something listen on port {problem.Port} of every address?)"
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
                await events.AddAsync(EventKinds.VipUnusable, service.Name, giveUp, EventOwner.Of(service));
            }

            return;
        }

        var next = FreeVip();
        if (next is null || !await store.ChangeVipAsync(service.Name, problem.Vip, next))
        {
            await events.AddAsync(EventKinds.VipUnusable, service.Name,
                $"the load balancer cannot listen on {problem.Vip}:{problem.Port} ({problem.Reason}); {(next is null ? "no free VIP is left to move the service to; widen --vip-pool" : "the service changed meanwhile; the balancer's next report decides")}", EventOwner.Of(service));
            return;
        }

        await events.AddAsync(EventKinds.VipMoved, service.Name,
            $"{service.Name} moved from VIP {problem.Vip} to {next}: the load balancer cannot listen on {problem.Vip}:{problem.Port} ({problem.Reason}); something else bound it first, and that address is no longer handed out", EventOwner.Of(service));
    }
}
