using Heddle.Placement.Checking;
using Heddle.Placement.Cluster;

namespace Heddle.Placement.Simulation;

/// <summary>What a replay ended with.</summary>
public sealed record SimulationReport
{
    public required int Operations { get; init; }

    /// <summary>Instances the allocator placed over the whole replay (including ones later scaled away or deleted).</summary>
    public required int Placements { get; init; }

    /// <summary>Instance placements that failed, grouped by the explanation the allocator gave.</summary>
    public required IReadOnlyList<UnplacedGroup> Unplaced { get; init; }

    public required int StandingInstances { get; init; }

    public required double CpuUtilisation { get; init; }

    public required double MemoryUtilisation { get; init; }

    /// <summary>CPU utilisation just before the first instance could not be placed; null if none failed.</summary>
    public double? CpuUtilisationAtFirstFailure { get; init; }

    public required int MaxFaultDomainSkew { get; init; }

    /// <summary>Hard-rule violations the independent checker found in the standing placements. Must be empty.</summary>
    public required IReadOnlyList<string> Violations { get; init; }

    public int UnplacedCount => Unplaced.Sum(u => u.Count);
}

public sealed record UnplacedGroup(int Count, string Why, string Example);

/// <summary>
/// Replays a trace against a cluster through an allocator. Deploy and scale converge a role to its count: instances
/// above it are released, missing ones below it (including ones that failed earlier) are placed, and the ones that
/// stand are never moved.
/// </summary>
public sealed class Simulator(ClusterState state, IAllocator allocator)
{
    private readonly Dictionary<RoleKey, TraceOp> _roles = [];
    private readonly Dictionary<string, (int Count, string Example)> _unplaced = new(StringComparer.Ordinal);
    private int _placements;
    private int _operations;
    private double? _utilisationAtFirstFailure;

    public ClusterState State => state;

    public SimulationReport Run(IEnumerable<TraceOp> ops)
    {
        foreach (var op in ops)
        {
            Apply(op);
        }

        return Report();
    }

    public void Apply(TraceOp op)
    {
        _operations++;
        switch (op.Kind)
        {
            case TraceOpKind.Deploy:
                var key = new RoleKey(op.Tenant, op.Service, op.Role!);
                _roles[key] = op;
                Converge(key, op.Instances);
                break;
            case TraceOpKind.Scale:
                var scaled = new RoleKey(op.Tenant, op.Service, op.Role!);
                _roles[scaled] = _roles[scaled] with { Instances = op.Instances };
                Converge(scaled, op.Instances);
                break;
            case TraceOpKind.Delete:
                foreach (var role in _roles.Keys.Where(r => r.Tenant == op.Tenant && r.Service == op.Service && (op.Role is null || r.Role == op.Role)).ToList())
                {
                    Converge(role, 0);
                    _roles.Remove(role);
                }

                break;
        }
    }

    public SimulationReport Report()
    {
        var (cpus, usedCpus, memory, usedMemory) = state.Utilisation();
        var nodes = state.NodeSpecs.ToList();
        var constraints = (RoleKey role) => _roles.TryGetValue(role, out var op) && op.Constraints.Count > 0 ? op.Constraints : null;
        return new SimulationReport
        {
            Operations = _operations,
            Placements = _placements,
            Unplaced = [.. _unplaced.OrderByDescending(u => u.Value.Count).Select(u => new UnplacedGroup(u.Value.Count, u.Key, u.Value.Example))],
            StandingInstances = state.Placements.Count(),
            CpuUtilisation = cpus == 0 ? 0 : (double)usedCpus / cpus,
            MemoryUtilisation = memory == 0 ? 0 : (double)usedMemory / memory,
            CpuUtilisationAtFirstFailure = _utilisationAtFirstFailure,
            MaxFaultDomainSkew = SpreadMeasure.MaxSkew(state, constraints),
            Violations = HardRuleChecker.Check(nodes, state.Placements, constraints),
        };
    }

    private void Converge(RoleKey key, int count)
    {
        var existing = state.PlacementsOf(key).Select(p => p.Index).ToHashSet();
        foreach (var index in existing.Where(i => i >= count).ToList())
        {
            state.Release(key, index);
        }

        if (count == 0)
        {
            return;
        }

        var op = _roles[key];
        var missing = Enumerable.Range(0, count).Where(i => !existing.Contains(i)).Select(i => new InstanceSlot(i, i % op.UpgradeDomains)).ToList();
        if (missing.Count == 0)
        {
            return;
        }

        var request = new PlacementRequest { Role = key, Cpus = op.Cpus, MemoryMiB = op.MemoryMiB, Instances = missing, Constraints = op.Constraints };
        var before = state.AllocatedCpus;
        var result = allocator.Place(request);
        _placements += result.Placed.Count;
        foreach (var failure in result.Unplaced)
        {
            if (_utilisationAtFirstFailure is null)
            {
                // Utilisation as it stood when this instance failed: what the request had placed before it counts.
                var placedBefore = result.Placed.Count(p => p.Index < failure.Index) * (long)op.Cpus;
                _utilisationAtFirstFailure = state.TotalCpus == 0 ? 0 : (double)(before + placedBefore) / state.TotalCpus;
            }

            var why = failure.Why.ToString();
            var example = $"{failure.Role}/{failure.Index} ({op.Cpus} cores, {op.MemoryMiB} MiB)";
            _unplaced[why] = (_unplaced.GetValueOrDefault(why).Count + 1, _unplaced.GetValueOrDefault(why).Example ?? example);
        }
    }
}
