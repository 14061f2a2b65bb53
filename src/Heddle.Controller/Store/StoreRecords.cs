namespace Heddle.Controller.Store;

/// <summary>A package the controller holds: its blob is in the blob store under <see cref="Sha256"/>.</summary>
public sealed record PackageRecord(string Sha256, long Bytes, string Service, string ServiceYaml, DateTimeOffset Added);

/// <summary>A service's current deployment. <see cref="Revision"/> grows with every accepted change.</summary>
public sealed record ServiceRecord(string Name, string Tenant, long Revision, string PackageSha256, string Configuration, bool Deleting, DateTimeOffset Updated, string? Vip = null);

/// <summary>One placed instance and what its node last reported of it.</summary>
public sealed record InstanceRecord
{
    public required string Service { get; init; }

    public required string Role { get; init; }

    public required int Index { get; init; }

    public required int UpgradeDomain { get; init; }

    public required string Node { get; init; }

    public required IReadOnlyList<int> Cpus { get; init; }

    public required int MemoryMiB { get; init; }

    /// <summary>Changes whenever the instance must be (re)started from scratch: placement, package or settings.</summary>
    public required long Generation { get; init; }

    public string State { get; init; } = "Pending";

    public string? Reason { get; init; }

    public IReadOnlyDictionary<string, int> Ports { get; init; } = new Dictionary<string, int>();

    public int Restarts { get; init; }

    public int Pid { get; init; }

    public DateTimeOffset Updated { get; init; }

    public string Id => $"{Service}/{Role}/{Index}";
}

public sealed record NodeRecord
{
    public required string Name { get; init; }

    public required string Address { get; init; }

    public required string FaultDomain { get; init; }

    public required IReadOnlyDictionary<string, string> Labels { get; init; }

    public required int MemoryMiB { get; init; }

    public required IReadOnlyList<IReadOnlyList<int>> Cores { get; init; }

    public string? LogUrl { get; init; }

    /// <summary>Ready, Down or Draining.</summary>
    public required string Condition { get; init; }

    public required DateTimeOffset LastSeen { get; init; }
}

/// <summary>What a placement pass writes: new or re-placed instances, and instances to remove.</summary>
public sealed record PlacementCommit(string Service, long ExpectedRevision, IReadOnlyList<InstanceRecord> Upserts, IReadOnlyList<(string Role, int Index)> Removals);
