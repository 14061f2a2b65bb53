namespace Heddle.Contracts.Api;

/// <summary>POST /v1/deployments: deploy (or re-deploy) a service from an uploaded package and a model configuration.</summary>
/// <param name="Slot">production (default) or staging: each slot of a service is a deployment of its own, with its own VIP.</param>
public sealed record DeploymentRequest(string PackageSha256, string Configuration, string? ConfigurationFileName = null, string? Tenant = null, string? Slot = null);

/// <summary>A new revision was recorded. <see cref="Upgrade"/> says whether running instances are walked to it one upgrade domain at a time.</summary>
/// <param name="Deployment">The slot's deployment key (hello, hello@2): what to follow the deployment by.</param>
public sealed record DeploymentAccepted(string Service, long Revision, string PackageSha256, string Changes = "", bool Upgrade = false, string Slot = "production", string Deployment = "");

/// <summary>POST /v1/services/{name}/swap: what each slot holds now.</summary>
public sealed record SwapDone(string Service, string Production, long ProductionRevision, string? ProductionVip, string Staging, long StagingRevision, string? StagingVip);

/// <summary>POST /v1/services/{name}/scale: a new revision with one role's instance count changed; nothing else restarts.</summary>
public sealed record ScaleRequest(string Role, int Instances);

/// <summary>POST /v1/services/{name}/rollback: walk back to revision <see cref="To"/> (default: the one before the current).</summary>
public sealed record RollbackRequest(long? To = null);

/// <summary>One kept revision of a service, as `heddle history` shows it.</summary>
public sealed record RevisionStatus(long Number, DateTimeOffset Created, string PackageSha256, string Changes, string Outcome, bool Current);

/// <summary>An upgrade walk: where it is, what each upgrade domain is doing, and how it ended.</summary>
public sealed record UpgradeStatus
{
    public required string Service { get; init; }

    /// <summary>The revision the upgrade is for, and the one before it.</summary>
    public required long Revision { get; init; }

    public required long Previous { get; init; }

    /// <summary>InProgress, RollingBack, Paused, WaitingForResume, Completed or RolledBack.</summary>
    public required string State { get; init; }

    public string? Reason { get; init; }

    public required string Mode { get; init; }

    public required string FailureAction { get; init; }

    public required double HealthCheckStableSeconds { get; init; }

    public required double UpgradeDomainTimeoutSeconds { get; init; }

    public int? CurrentDomain { get; init; }

    /// <summary>Draining or Updating while a domain is walked.</summary>
    public string? Phase { get; init; }

    /// <summary>Seconds until the current domain's health gate opens, once all its instances are Ready.</summary>
    public double? GateRemainingSeconds { get; init; }

    public required DateTimeOffset Started { get; init; }

    public DateTimeOffset? Finished { get; init; }

    public required IReadOnlyList<UpgradeDomainStatus> Domains { get; init; }

    public bool IsFinished => State is UpgradeStates.Completed or UpgradeStates.RolledBack;
}

/// <summary>One upgrade domain in a walk: Pending, Draining, Updating, Done, or Skipped (not walked by a rollback).</summary>
public sealed record UpgradeDomainStatus(int Domain, string State, IReadOnlyList<UpgradeInstanceStatus> Instances);

public sealed record UpgradeInstanceStatus(string Id, string State, long Revision, long RunningRevision, bool Draining);

public static class UpgradeStates
{
    public const string InProgress = "InProgress";
    public const string RollingBack = "RollingBack";
    public const string Paused = "Paused";
    public const string WaitingForResume = "WaitingForResume";
    public const string Completed = "Completed";
    public const string RolledBack = "RolledBack";
}

/// <summary>A base image the controller holds (`heddle image list`).</summary>
/// <summary>An image; <see cref="Tenant"/> is the tenant whose own it is, null for a shared image (an admin's, usable by every tenant).</summary>
public sealed record ImageStatus(string Name, string Sha256, long Bytes, int Files, DateTimeOffset Added, IReadOnlyList<string> UsedBy)
{
    public string? Tenant { get; init; }
}

/// <summary>The answer to an image upload: what it holds, and how many device files were left out (a container gets its own /dev).</summary>
public sealed record ImageImported(string Name, string Sha256, long Bytes, int Files, int Directories, int Links, int DevicesSkipped, bool AlreadyPresent);

public sealed record PackageUploaded(string Sha256, string Service, long Bytes, bool AlreadyPresent);

public sealed record ServiceStatus
{
    /// <summary>The service's name, as users give it.</summary>
    public required string Name { get; init; }

    /// <summary>production or staging.</summary>
    public string Slot { get; init; } = "production";

    /// <summary>This deployment's own key: its instance ids start with it (hello, or hello@2 for a second deployment).</summary>
    public string Deployment { get; init; } = string.Empty;

    /// <summary>Its name in the cluster zone: the service's name, or &lt;service&gt;.staging.</summary>
    public string DnsName { get; init; } = string.Empty;

    public required string Tenant { get; init; }

    public required long Revision { get; init; }

    public required string PackageSha256 { get; init; }

    /// <summary>The service's load-balancer address; its input endpoints' public ports listen there.</summary>
    public string? Vip { get; init; }

    /// <summary>Why the VIP does not serve now, when a load balancer reports it cannot listen there (null when it does).</summary>
    public string? VipProblem { get; init; }

    /// <summary>True when load balancers are known and none of them can open the VIP: the service answers nowhere (deploy --wait fails).</summary>
    public bool VipUnserved { get; init; }

    /// <summary>Active, or Deleting while its instances stop.</summary>
    public required string State { get; init; }

    public required int DesiredInstances { get; init; }

    public required int ReadyInstances { get; init; }

    public required IReadOnlyList<InstanceStatus> Instances { get; init; }

    public required DateTimeOffset Updated { get; init; }

    /// <summary>The state of the current or last upgrade (see <see cref="UpgradeStates"/>); null when there has been none.</summary>
    public string? Upgrade { get; init; }

    public string? UpgradeReason { get; init; }
}

public sealed record InstanceStatus
{
    public required string Id { get; init; }

    public required string Service { get; init; }

    public required string Role { get; init; }

    public required int Index { get; init; }

    public required int UpgradeDomain { get; init; }

    public required string Node { get; init; }

    public string? NodeAddress { get; init; }

    public required IReadOnlyList<int> Cpus { get; init; }

    public required int MemoryMiB { get; init; }

    public required string State { get; init; }

    public string? Reason { get; init; }

    public IReadOnlyDictionary<string, int> Ports { get; init; } = new Dictionary<string, int>();

    public int Restarts { get; init; }

    public int Pid { get; init; }

    /// <summary>What the instance's own disk holds and its size, in MiB (0 and 0 when it has no disk of its own: an agent that is not root).</summary>
    public int DiskUsedMiB { get; init; }

    public int DiskSizeMiB { get; init; }

    public long Generation { get; init; }

    /// <summary>The revision it should run, and the one its agent says it runs.</summary>
    public long Revision { get; init; }

    public long RunningRevision { get; init; }

    /// <summary>Out of the load balancer and DNS, about to stop.</summary>
    public bool Draining { get; init; }

    public DateTimeOffset Updated { get; init; }
}

public sealed record NodeStatus
{
    public required string Name { get; init; }

    public required string Address { get; init; }

    public required string FaultDomain { get; init; }

    public required IReadOnlyDictionary<string, string> Labels { get; init; }

    public required int MemoryMiB { get; init; }

    public required IReadOnlyList<IReadOnlyList<int>> Cores { get; init; }

    /// <summary>Ready, Down or Draining.</summary>
    public required string Condition { get; init; }

    public required DateTimeOffset LastSeen { get; init; }

    public int Instances { get; init; }

    public int AllocatedCpus { get; init; }

    /// <summary>How the node isolates its instances, as its agent says (or that it does not).</summary>
    public string? Isolation { get; init; }

    /// <summary>The instance drivers its agent can run.</summary>
    public IReadOnlyList<string> Drivers { get; init; } = [];

    /// <summary>The host image the node says it booted (`heddle hostimage`), or null for a host installed otherwise.</summary>
    public string? HostImage { get; init; }
}

/// <summary>
/// One event. <see cref="Tenant"/> is whose it is (null: the cluster's, an admin's to see: nodes, tokens, shared images,
/// and events written before events had owners); <see cref="Incarnation"/> tells apart the services that had the
/// subject's name (a deleted and re-created name is a new incarnation); null for an event not about a service.
/// </summary>
public sealed record EventRecord(long Id, DateTimeOffset Time, string Kind, string Subject, string Message)
{
    public string? Tenant { get; init; }

    public long? Incarnation { get; init; }
}

public sealed record ClusterInfo(string ApiUrl, string AgentUrl, string Version, string? DnsAddress, string? Zone, string StateDirectory)
{
    /// <summary>The store this controller keeps the cluster in ("sqlite PATH" or "etcd host:port, ...").</summary>
    public string? Store { get; init; }

    /// <summary>The API URL of the controller that leads now (runs the reconcilers), or a sentence when it cannot be told.</summary>
    public string? Leader { get; init; }

    /// <summary>Every controller of the cluster, by API URL (one, on the embedded store).</summary>
    public IReadOnlyList<string> Controllers { get; init; } = [];

    /// <summary>The cluster CA's hash as `heddle login --ca-hash` takes it: sha256: and the SHA-256 of its SubjectPublicKeyInfo.</summary>
    public string? CaHash { get; init; }

    /// <summary>Every load balancer that reported, with its announcer and state.</summary>
    public IReadOnlyList<BalancerStatus> Balancers { get; init; } = [];
}

/// <summary>States an instance goes through, as DESIGN.md lists them.</summary>
public static class InstanceStates
{
    public const string Pending = "Pending";
    public const string Downloading = "Downloading";
    public const string Starting = "Starting";
    public const string Ready = "Ready";
    public const string Unhealthy = "Unhealthy";
    public const string Stopping = "Stopping";
    public const string Stopped = "Stopped";
    public const string Faulted = "Faulted";

    /// <summary>Asked for by the configuration, but no node can take it now (the reason says why); not in the store.</summary>
    public const string Unplaced = "Unplaced";
}

/// <summary>The stable <c>type</c> of each RFC 7807 problem the API returns.</summary>
public static class ProblemTypes
{
    public const string Unauthorized = "https://heddle.dev/problems/unauthorized";
    public const string Forbidden = "https://heddle.dev/problems/forbidden";
    public const string NotFound = "https://heddle.dev/problems/not-found";
    public const string InvalidModel = "https://heddle.dev/problems/invalid-model";
    public const string InvalidPackage = "https://heddle.dev/problems/invalid-package";
    public const string InvalidImage = "https://heddle.dev/problems/invalid-image";
    public const string ImageMissing = "https://heddle.dev/problems/image-missing";
    public const string HashMismatch = "https://heddle.dev/problems/hash-mismatch";
    public const string PackageMissing = "https://heddle.dev/problems/package-missing";
    public const string Conflict = "https://heddle.dev/problems/conflict";
    public const string NotReplicated = "https://heddle.dev/problems/not-replicated";
    public const string StoreUnavailable = "https://heddle.dev/problems/store-unavailable";
    public const string InvalidRequest = "https://heddle.dev/problems/invalid-request";
    public const string UpgradeInProgress = "https://heddle.dev/problems/upgrade-in-progress";
    public const string QuotaExceeded = "https://heddle.dev/problems/quota-exceeded";
}

/// <summary>POST /v1/tokens: an API token (admin, or a tenant's when Tenant is set) or, with Join, a join token for agents; with Boot, a token for `heddle boot` that asks for boot decisions and nothing else.</summary>
public sealed record TokenCreateRequest(bool Join = false, string? Tenant = null, long? TtlSeconds = null, int? Uses = null, string? Description = null, bool Metrics = false, bool Boot = false);

/// <summary>The token, shown this once; for a join token, the join string agents take.</summary>
public sealed record TokenCreated(string Id, string Token, string Kind, string? Tenant, DateTimeOffset? Expires, int? Uses, string? JoinString);

public sealed record TokenStatus(string Id, string Kind, string Scope, DateTimeOffset Created, DateTimeOffset? Expires, int? UsesLeft, bool Revoked, string? Description);

/// <summary>
/// What a rollback did, one of two: a new revision walking back (<see cref="NewRevision"/>, the API's 202 Accepted), or
/// the upgrade in progress turned around (<see cref="WalkTurnedBack"/>, its 200 OK).
/// </summary>
public abstract record RollbackResult
{
    private RollbackResult()
    {
    }

    public sealed record NewRevision(DeploymentAccepted Accepted) : RollbackResult;

    public sealed record WalkTurnedBack(UpgradeStatus Walk) : RollbackResult;
}
