using Heddle.Model.Definition;

namespace Heddle.Placement;

/// <summary>Identifies a role of a tenant's service; instances are numbered within it.</summary>
public readonly record struct RoleKey(string Tenant, string Service, string Role)
{
    public override string ToString() => $"{Tenant}/{Service}/{Role}";
}

/// <summary>One instance to place: its index in the role and its upgrade domain.</summary>
public readonly record struct InstanceSlot(int Index, int UpgradeDomain);

/// <summary>Place these instances of one role, each with <see cref="Cpus"/> logical CPUs and <see cref="MemoryMiB"/>.</summary>
public sealed record PlacementRequest
{
    public required RoleKey Role { get; init; }

    public required int Cpus { get; init; }

    public required int MemoryMiB { get; init; }

    public required IReadOnlyList<InstanceSlot> Instances { get; init; }

    /// <summary>Node labels the node must carry, with these values.</summary>
    public IReadOnlyDictionary<string, string> Constraints { get; init; } = new Dictionary<string, string>();

    /// <summary>The driver the role runs with: only nodes whose agent can run it take the instance (never a silent fallback).</summary>
    public string Driver { get; init; } = DriverNames.Process;

    /// <summary>Slots 0..count-1 with upgrade domain i mod <paramref name="upgradeDomains"/>, as DESIGN.md defines them.</summary>
    public static IReadOnlyList<InstanceSlot> Slots(int from, int to, int upgradeDomains) =>
        [.. Enumerable.Range(from, Math.Max(0, to - from)).Select(i => new InstanceSlot(i, i % upgradeDomains))];
}

/// <summary>Where one instance runs: its node, the exact logical CPUs and the memory it gets.</summary>
public sealed record Placement(RoleKey Role, int Index, int UpgradeDomain, string Node, string FaultDomain, IReadOnlyList<int> Cpus, int MemoryMiB);

/// <summary>An instance that could not be placed, and why, in counts per rule.</summary>
public sealed record Unplaced(RoleKey Role, int Index, int UpgradeDomain, Explanation Why);

public sealed record PlacementResult(IReadOnlyList<Placement> Placed, IReadOnlyList<Unplaced> Unplaced);
