using System.Text.Json.Serialization;
using Heddle.Controller.Upgrades;

namespace Heddle.Controller.Store;

/// <summary>A package the controller holds: its blob is in the blob store under <see cref="Sha256"/>.</summary>
/// <summary>A base image: a name that always means the same content (names are never re-pointed), its blob and what it holds.</summary>
/// <summary>A named base image; <paramref name="Tenant"/> null when an admin imported it for every tenant to use.</summary>
public sealed record ImageRecord(string Name, string Sha256, long Bytes, int Files, DateTimeOffset Added, string? Tenant = null);

public sealed record PackageRecord(string Sha256, long Bytes, string Service, string ServiceYaml, DateTimeOffset Added);

/// <summary>
/// A service's deployment: <see cref="Revision"/> is the revision it should run (its package and configuration are
/// copied here); <see cref="Version"/> grows with every change of the row and guards every write against a stale read.
/// </summary>
/// <summary>
/// One deployment of a service in one slot. <see cref="Name"/> is its key (the instances' ids start with it) and never
/// changes; <see cref="Family"/> is the service's name as users give it and <see cref="Slot"/> which of its slots the
/// deployment is in now (a swap exchanges the slots and VIPs of the two deployments of a family, nothing else).
/// </summary>
public sealed record ServiceRecord(string Name, string Tenant, long Revision, string PackageSha256, string Configuration, bool Deleting, DateTimeOffset Updated, string? Vip = null)
{
    private readonly string? _family;

    public string Family { get => _family ?? Name; init => _family = value; }

    public string Slot { get; init; } = Slots.Production;

    /// <summary>The DNS name of the deployment's slot below the zone: the service's name, or &lt;service&gt;.staging.</summary>
    public string DnsName => Slot == Slots.Production ? Family : $"{Family}.{Slot}";

    public long Version { get; init; }

    /// <summary>
    /// Which service of this name it is: the store revision that created it, set when it is read (never stored). A
    /// deleted and re-created name is a new incarnation, so events written for the old one are not the new one's.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public long Incarnation { get; init; }

    /// <summary>The uid (and gid) every instance of this deployment runs as on every node; 0 for a record written before uids were the controller's.</summary>
    public int Uid { get; init; }

    /// <summary>The highest revision number given so far (a rollback makes <see cref="Revision"/> lower than it).</summary>
    public long LastRevision { get; init; }

    /// <summary>The current upgrade, or the last one with how it ended; null when there has been none.</summary>
    public UpgradeWalk? Walk { get; init; }

    public bool UpgradeInProgress => Walk is { IsFinished: false };
}

/// <summary>One numbered (package, configuration) of a service, kept for history and rollback.</summary>
public sealed record RevisionRecord(string Service, long Number, string PackageSha256, string Configuration, DateTimeOffset Created, string Changes, RevisionOutcome Outcome);

/// <summary>A new revision to record: written only if the service is still at <see cref="ExpectedVersion"/> (0: the service must not exist).</summary>
/// <summary>A service's two slots: production (the default) and staging, each a deployment of its own with its own VIP.</summary>
public static class Slots
{
    public const string Production = "production";
    public const string Staging = Heddle.Model.Validation.ZoneLabels.Staging;

    public static bool IsKnown(string slot) => slot is Production or Staging;
}

public sealed record DeploymentWrite(string Service, string Tenant, long Number, string PackageSha256, string Configuration, string Changes, long ExpectedVersion)
{
    /// <summary>For a new deployment: the service it belongs to and its slot (an existing one keeps both).</summary>
    public string? Family { get; init; }

    public string Slot { get; init; } = Slots.Production;

    /// <summary>
    /// The VIP a service without one is given (the controller chooses it from its pool); the write is refused when
    /// another service holds it meanwhile. A service that has a VIP keeps it.
    /// </summary>
    public string? Vip { get; init; }

    /// <summary>The uid a deployment without one is given (the controller chooses it from its range); refused when another deployment holds it meanwhile.</summary>
    public int? Uid { get; init; }

    public int HistoryLimit { get; init; } = 10;

    /// <summary>The upgrade that brings running instances to the new revision; null when none of them needs to change.</summary>
    public UpgradeWalk? Walk { get; init; }

    /// <summary>The events that tell of the deployment, stored right after it (before the change feed tells of it), as the service's (their owner is set from the record written).</summary>
    public IReadOnlyList<NewEvent> Events { get; init; } = [];

    /// <summary>The revision this one follows had every instance Ready when it was accepted: it is Completed, not Superseded.</summary>
    public bool PreviousCompleted { get; init; }

    /// <summary>
    /// <see cref="IClusterStore.TenantVersion"/> as read before the tenant's quota was checked: the write is refused
    /// when another deployment of the tenant was accepted since. Null: not checked against a quota.
    /// </summary>
    public long? TenantVersion { get; init; }
}

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

    /// <summary>The revision whose package and settings the instance should run.</summary>
    public required long Revision { get; init; }

    /// <summary>The revision its agent last reported it running (0 until it has).</summary>
    public long RunningRevision { get; init; }

    /// <summary>Out of the load balancer and DNS, about to be stopped (removed, or restarted by an upgrade).</summary>
    public bool Draining { get; init; }

    /// <summary>Since when it has been Ready at <see cref="RunningRevision"/> without a break; null when it is not Ready.</summary>
    public DateTimeOffset? ReadySince { get; init; }

    /// <summary>Why it last ended on its own ("exited with code 1"), and the last line it wrote to stderr then.</summary>
    public string? LastFailure { get; init; }

    public string? LastStderr { get; init; }

    /// <summary>What its own disk holds and its size, in MiB, as its agent last reported (0 when it has none).</summary>
    public int DiskUsedMiB { get; init; }

    public int DiskSizeMiB { get; init; }

    public InstanceState State { get; init; } = InstanceState.Pending;

    public string? Reason { get; init; }

    public IReadOnlyDictionary<string, int> Ports { get; init; } = new Dictionary<string, int>();

    public int Restarts { get; init; }

    public int Pid { get; init; }

    public DateTimeOffset Updated { get; init; }

    public string Id => $"{Service}/{Role}/{Index}";
}

/// <remarks>Decoded from the store, the values most nodes repeat are shared copies (<see cref="SharedValues"/>).</remarks>
public sealed record NodeRecord
{
    public required string Name { get; init; }

    public required string Address { get; init; }

    [JsonConverter(typeof(SharedValues.TextJson))]
    public required string FaultDomain { get; init; }

    [JsonConverter(typeof(SharedValues.LabelsJson))]
    public required IReadOnlyDictionary<string, string> Labels { get; init; }

    public required int MemoryMiB { get; init; }

    [JsonConverter(typeof(SharedValues.TopologyJson))]
    public required IReadOnlyList<IReadOnlyList<int>> Cores { get; init; }

    public string? LogUrl { get; init; }

    /// <summary>How the node isolates its instances, as its agent says.</summary>
    [JsonConverter(typeof(SharedValues.TextJson))]
    public string? Isolation { get; init; }

    /// <summary>The instance drivers its agent can run; an agent from before drivers were reported runs processes.</summary>
    [JsonConverter(typeof(SharedValues.TextListJson))]
    public IReadOnlyList<string> Drivers { get; init; } = [Heddle.Model.Definition.DriverNames.Process];

    /// <summary>The host image its agent says the node booted; null for a host installed otherwise.</summary>
    [JsonConverter(typeof(SharedValues.TextJson))]
    public string? HostImage { get; init; }

    public required NodeCondition Condition { get; init; }

    public required DateTimeOffset LastSeen { get; init; }

    /// <summary>Whether the two records say the same but for when the node was last seen.</summary>
    public bool SameAs(NodeRecord other) =>
        Name == other.Name && Address == other.Address && FaultDomain == other.FaultDomain && MemoryMiB == other.MemoryMiB && LogUrl == other.LogUrl
        && Isolation == other.Isolation && HostImage == other.HostImage && Condition == other.Condition
        && Labels.Count == other.Labels.Count && Labels.All(l => other.Labels.TryGetValue(l.Key, out var v) && v == l.Value)
        && Drivers.SequenceEqual(other.Drivers) && SharedValues.SameTopology(Cores, other.Cores);
}

/// <summary>
/// What a reconcile pass (or a user's upgrade command) writes in one transaction, if the service is still at
/// <see cref="ExpectedVersion"/>: new or re-placed instances (started afresh), instances to remove, marks on running
/// instances (revision, draining; no restart), the upgrade walk, the service's desired revision and revision outcomes.
/// </summary>
public sealed record PlacementCommit(string Service, long ExpectedVersion, IReadOnlyList<InstanceRecord> Upserts, IReadOnlyList<(string Role, int Index)> Removals)
{
    public IReadOnlyList<InstanceMark> Marks { get; init; } = [];

    /// <summary>When set, the walk is replaced by this one (whose value may be null).</summary>
    public WalkChange? Walk { get; init; }

    /// <summary>When set, the service's desired revision becomes this one (a rollback).</summary>
    public long? DesiredRevision { get; init; }

    public IReadOnlyList<(long Revision, RevisionOutcome Outcome)> Outcomes { get; init; } = [];

    /// <summary>
    /// The leader's term key and its revision: the commit applies only while that term holds (a store shared by several
    /// controllers checks it; the embedded store has one controller and no terms to check).
    /// </summary>
    public (string Key, long Revision)? Fence { get; init; }

    /// <summary>The events that tell of this commit, stored right after it (before the change feed tells of it).</summary>
    public IReadOnlyList<NewEvent> Events { get; init; } = [];

    /// <summary>Which writer commits: the reconciler's own commits do not queue its service again.</summary>
    public ChangeSource Source { get; init; } = ChangeSource.Here;

    public bool IsEmpty => Upserts.Count == 0 && Removals.Count == 0 && Marks.Count == 0 && Walk is null && DesiredRevision is null && Outcomes.Count == 0;
}

public sealed record WalkChange(UpgradeWalk? Walk);

/// <summary>A running instance relabelled (its spec is the same under the new revision, or it reloads its settings) or drained.</summary>
public sealed record InstanceMark(string Role, int Index, long Revision, bool Draining);

/// <summary>What an agent reported of one instance.</summary>
public sealed record InstanceReportRecord(string Node, string Service, string Role, int Index, long Generation, InstanceState State, string? Reason)
{
    public IReadOnlyDictionary<string, int> Ports { get; init; } = new Dictionary<string, int>();

    public int Restarts { get; init; }

    public int Pid { get; init; }

    public long Revision { get; init; }

    public string? Failure { get; init; }

    public string? LastStderr { get; init; }

    public int DiskUsedMiB { get; init; }

    public int DiskSizeMiB { get; init; }

    /// <summary>
    /// The node's stream session the report came on (<see cref="IClusterStore.OpenNodeSessionAsync"/>): refused once
    /// another has opened, so a report that arrives late on a stream already replaced cannot overwrite a newer one.
    /// 0 for a report of no stream.
    /// </summary>
    public long Session { get; init; }
}

/// <summary>
/// An event to store with another write: in the same commit (<see cref="IClusterStore.UpdateInstanceStatusAsync(InstanceReportRecord, NewEvent?, CancellationToken)"/>),
/// or right after it (the <c>told</c> parameters, <see cref="PlacementCommit.Events"/>, <see cref="DeploymentWrite.Events"/>), and
/// either way told of by the change feed together with the write: nothing the write sets going stores its events first.
/// </summary>
public sealed record NewEvent(EventKind Kind, string Subject, string Message, EventOwner? Owner = null);
