using Heddle.Contracts.Api;

namespace Heddle.Controller.Store;

/// <summary>
/// Everything the controller must not lose. Reads answer from this controller's copy of the store, kept current by a
/// watch: they never wait on I/O, and they keep answering the last known state while the store cannot be reached.
/// Writes are asynchronous and commit before their task completes, so an answer given to a user or an agent is
/// durable; when the store cannot take a write it fails with <see cref="Kv.KvUnavailableException"/> and nothing
/// changed. One implementation (<see cref="KvClusterStore"/>) over SQLite or etcd.
/// </summary>
public interface IClusterStore : IDisposable
{
    /// <summary>
    /// The change feed: raised once per record changed, after the change is readable here, for this controller's own
    /// commits (raised before the commit returns) and for those of other controllers sharing the store (as the watch
    /// brings them). Handlers run on the writer's or the watch's thread: they only hand work on.
    /// </summary>
    event Action<StoreChange>? Changed;

    /// <summary>
    /// The changes of a commit together (with the events stored to tell of it), raised after every handler of
    /// <see cref="Changed"/> has taken them in: what acts on a change (queues a reconcile, sends a goal state) finds the
    /// views and caches already marked.
    /// </summary>
    event Action<IReadOnlyList<StoreChange>>? Committed;

    Task PutPackageAsync(PackageRecord package, CancellationToken cancellationToken = default);

    PackageRecord? GetPackage(string sha256);

    /// <summary>Records that a tenant uploaded a package's bytes: the bytes are stored once, and owned by each tenant that uploaded them.</summary>
    Task AddPackageOwnerAsync(string sha256, string tenant, CancellationToken cancellationToken = default);

    /// <summary>Whether the tenant uploaded the package (a package stored before owners were recorded is the admin's alone).</summary>
    bool IsPackageOwner(string sha256, string tenant);

    /// <summary>
    /// Records an image under its name in its namespace (its tenant's, or the shared one when it has none); false (and
    /// nothing changed) when the name already means other content there.
    /// </summary>
    Task<bool> PutImageAsync(ImageRecord image, CancellationToken cancellationToken = default);

    /// <summary>The image of that name in one namespace: a tenant's own, or (null) the shared one. See <see cref="ImageNames.Resolve"/> for what a role's `image:` means.</summary>
    ImageRecord? GetImage(string? tenant, string name);

    /// <summary>Every image of every namespace.</summary>
    IReadOnlyList<ImageRecord> ListImages();

    /// <summary>Forgets an image's name in its namespace; false when there was none.</summary>
    Task<bool> DeleteImageAsync(ImageRecord image, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records a new revision of a service's deployment (and its upgrade walk) and makes it the desired one; clears a
    /// pending deletion; marks a previous revision still in progress without a walk Superseded; forgets revisions
    /// beyond the history limit that no instance runs. A service without a VIP gets <see cref="DeploymentWrite.Vip"/>.
    /// False (nothing changed) when the service is no longer at the expected version, its slot or that VIP was taken, or
    /// another deployment of the tenant was accepted since <see cref="DeploymentWrite.TenantVersion"/>.
    /// </summary>
    Task<bool> PutDeploymentAsync(DeploymentWrite write, CancellationToken cancellationToken = default);

    /// <summary>
    /// A number that changes whenever a deployment checked against the tenant's quota is accepted (0 before the first);
    /// read it before the tenant's usage and hand it back in <see cref="DeploymentWrite.TenantVersion"/>.
    /// </summary>
    long TenantVersion(string tenant);

    /// <summary>Every VIP held, with the deployment holding it.</summary>
    IReadOnlyDictionary<string, string> ListVips();

    RevisionRecord? GetRevision(string service, long number);

    /// <summary>The kept revisions of a service, newest first.</summary>
    IReadOnlyList<RevisionRecord> ListRevisions(string service);

    ServiceRecord? GetService(string name);

    IReadOnlyList<ServiceRecord> ListServices();

    /// <summary>Marks the service for deletion (its instances are stopped, then it is removed). False if unknown.</summary>
    Task<bool> MarkDeletingAsync(string name, CancellationToken cancellationToken = default, NewEvent? told = null);

    /// <summary>Gives a deployment that has no uid (written by an earlier controller) one; false when it has one already or another deployment holds it.</summary>
    Task<bool> AssignUidAsync(string name, int uid, CancellationToken cancellationToken = default);

    /// <summary>
    /// Exchanges the slots and VIPs of two deployments of one service, in one transaction; false (nothing changed)
    /// when either is no longer at the version given.
    /// </summary>
    Task<bool> SwapSlotsAsync(string first, long firstVersion, string second, long secondVersion, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gives a service another VIP: false (nothing changed) when its VIP is no longer <paramref name="from"/> or another
    /// service holds <paramref name="to"/>.
    /// </summary>
    Task<bool> ChangeVipAsync(string service, string from, string to, CancellationToken cancellationToken = default);

    Task RemoveServiceAsync(string name, CancellationToken cancellationToken = default, NewEvent? told = null);

    /// <summary>
    /// Every instance, or one service's, in service, role and index order. One service's listing is the same object for
    /// as long as none of its placements and reports change: a view derived from it is current while it gets it again.
    /// </summary>
    IReadOnlyList<InstanceRecord> ListInstances(string? service = null);

    /// <summary>The services with an instance placed, in ordinal order: what <see cref="ListInstances"/> without a service lists, one service after another.</summary>
    IReadOnlyList<string> ListPlacedServices();

    /// <summary>
    /// One service's placements, in role and index order, without what agents reported (no state, no ports): where its
    /// instances are. The same object for as long as none of its placements change, however many reports come in.
    /// </summary>
    IReadOnlyList<InstanceRecord> ListPlacements(string service);

    /// <summary>One placed instance with what its agent last reported of its generation, or null when none is placed there.</summary>
    InstanceRecord? GetInstance(string service, string role, int index);

    IReadOnlyList<InstanceRecord> ListInstancesOnNode(string node);

    /// <summary>Applies a pass if the service is still at <see cref="PlacementCommit.ExpectedVersion"/> (and bumps it); false on conflict.</summary>
    Task<bool> CommitPlacementAsync(PlacementCommit commit, CancellationToken cancellationToken = default);

    /// <summary>Stores what an agent reported. False when the instance is not (or no longer) placed there with that generation.</summary>
    Task<bool> UpdateInstanceStatusAsync(InstanceReportRecord report, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores what an agent reported and, in the same commit, the event <paramref name="withEvent"/> (one store write per
    /// report, not two). The event is stored only with the report: null when the report was not applied or none was given.
    /// </summary>
    Task<(bool Updated, EventRecord? Event)> UpdateInstanceStatusAsync(InstanceReportRecord report, NewEvent? withEvent, CancellationToken cancellationToken = default);

    /// <summary>A number no instance run was given before, growing.</summary>
    Task<long> NextGenerationAsync(CancellationToken cancellationToken = default);

    Task PutNodeAsync(NodeRecord node, CancellationToken cancellationToken = default, NewEvent? told = null);

    NodeRecord? GetNode(string name);

    IReadOnlyList<NodeRecord> ListNodes();

    /// <summary>A number that grows whenever a node's record changes (not with heartbeats): a view of node records is current while it stays.</summary>
    long NodesVersion { get; }

    /// <summary>A number that grows whenever a record of <paramref name="kind"/> changes: a view of those records is current while it stays.</summary>
    long VersionOf(RecordKind kind);

    /// <summary>Sets a node's condition; false when the node is gone or, with a <paramref name="fence"/>, when the term it names has ended.</summary>
    Task<bool> SetNodeConditionAsync(string name, NodeCondition condition, DateTimeOffset lastSeen, (string Key, long Revision)? fence = null, CancellationToken cancellationToken = default,
        NewEvent? told = null);

    /// <summary>
    /// Records when this controller last heard from the nodes connected to it, for the leader (which may be another
    /// controller) to judge them by. The embedded store has one controller, which hears every node itself: it keeps nothing.
    /// </summary>
    Task PutNodesSeenAsync(IReadOnlyDictionary<string, DateTimeOffset> seen, CancellationToken cancellationToken = default);

    /// <summary>When a controller sharing the store last said it heard from the node; null when none did.</summary>
    DateTimeOffset? NodeSeen(string node);

    /// <summary>
    /// Opens a new stream session for the node (its agent said Hello): reports made on any earlier stream of it, on this
    /// controller or another, are refused from then on (<see cref="InstanceReportRecord.Session"/>). Returns the session.
    /// </summary>
    Task<long> OpenNodeSessionAsync(string node, CancellationToken cancellationToken = default);

    /// <summary>The node's session in force: the one its last Hello opened; 0 when none was.</summary>
    long NodeSession(string node);

    /// <summary>Stores an event with its owner (null: the cluster's own, seen by admins only).</summary>
    Task<EventRecord> AddEventAsync(EventKind kind, string subject, string message, EventOwner? owner = null, CancellationToken cancellationToken = default);

    IReadOnlyList<EventRecord> ListEvents(long afterId, int limit);

    IReadOnlyList<BalancerRecord> ListBalancers();

    BalancerRecord? GetBalancer(string name);

    /// <summary>The owner of each VIP served by ARP.</summary>
    IReadOnlyList<VipOwnerRecord> ListVipOwners();

    /// <summary>
    /// Writes a balancer's heartbeat and, in the same commit, the owner changes <paramref name="decide"/> makes from the
    /// current owners (claims, renewals, releases), on condition that none of those owners changed meanwhile; decides
    /// again on the newer owners when one did. Returns every owner after the commit.
    /// </summary>
    Task<IReadOnlyList<VipOwnerRecord>> HeartbeatBalancerAsync(BalancerRecord balancer, Func<IReadOnlyList<VipOwnerRecord>, IReadOnlyList<OwnerChange>> decide,
        CancellationToken cancellationToken = default);

    /// <summary>Forgets a balancer and releases the VIPs it owns (it stopped answering for them first); false when unknown.</summary>
    Task<bool> RemoveBalancerAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Marks a balancer unheard since <paramref name="heardAt"/> as noticed gone; false when it was heard since, or was marked already.</summary>
    Task<bool> MarkBalancerGoneAsync(string name, DateTimeOffset heardAt, CancellationToken cancellationToken = default);

    IReadOnlyList<UnusableVipRecord> ListUnusableVips();

    Task MarkVipUnusableAsync(UnusableVipRecord record, CancellationToken cancellationToken = default);
}
