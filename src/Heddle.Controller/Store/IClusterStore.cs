using Heddle.Contracts.Api;

namespace Heddle.Controller.Store;

/// <summary>
/// Everything the controller must not lose. Every method commits before it returns, so an answer given to a user
/// or an agent is durable. SQLite is the embedded implementation; an etcd-backed one can take its place.
/// </summary>
public interface IClusterStore : IDisposable
{
    void PutPackage(PackageRecord package);

    PackageRecord? GetPackage(string sha256);

    /// <summary>Records an image under its name; false (and nothing changed) when the name already means other content.</summary>
    bool PutImage(ImageRecord image);

    ImageRecord? GetImage(string name);

    IReadOnlyList<ImageRecord> ListImages();

    /// <summary>Forgets an image's name; false when there was none.</summary>
    bool DeleteImage(string name);

    /// <summary>
    /// Records a new revision of a service's deployment (and its upgrade walk) and makes it the desired one; clears a
    /// pending deletion; marks a previous revision still in progress without a walk Superseded; forgets revisions
    /// beyond the history limit that no instance runs. A service without a VIP gets <see cref="DeploymentWrite.Vip"/>.
    /// False (nothing changed) when the service is no longer at the expected version, its slot or that VIP was taken.
    /// </summary>
    bool PutDeployment(DeploymentWrite write);

    /// <summary>Every VIP held, with the deployment holding it.</summary>
    IReadOnlyDictionary<string, string> ListVips();

    RevisionRecord? GetRevision(string service, long number);

    /// <summary>The kept revisions of a service, newest first.</summary>
    IReadOnlyList<RevisionRecord> ListRevisions(string service);

    ServiceRecord? GetService(string name);

    IReadOnlyList<ServiceRecord> ListServices();

    /// <summary>Marks the service for deletion (its instances are stopped, then it is removed). False if unknown.</summary>
    bool MarkDeleting(string name);

    /// <summary>
    /// Exchanges the slots and VIPs of two deployments of one service, in one transaction; false (nothing changed)
    /// when either is no longer at the version given.
    /// </summary>
    bool SwapSlots(string first, long firstVersion, string second, long secondVersion);

    /// <summary>
    /// Gives a service another VIP: false (nothing changed) when its VIP is no longer <paramref name="from"/> or another
    /// service holds <paramref name="to"/>.
    /// </summary>
    bool ChangeVip(string service, string from, string to);

    void RemoveService(string name);

    IReadOnlyList<InstanceRecord> ListInstances(string? service = null);

    IReadOnlyList<InstanceRecord> ListInstancesOnNode(string node);

    /// <summary>Applies a pass if the service is still at <see cref="PlacementCommit.ExpectedVersion"/> (and bumps it); false on conflict.</summary>
    bool CommitPlacement(PlacementCommit commit);

    /// <summary>Stores what an agent reported. False when the instance is not (or no longer) placed there with that generation.</summary>
    bool UpdateInstanceStatus(InstanceReportRecord report);

    long NextGeneration();

    void PutNode(NodeRecord node);

    NodeRecord? GetNode(string name);

    IReadOnlyList<NodeRecord> ListNodes();

    void SetNodeCondition(string name, string condition, DateTimeOffset lastSeen);

    /// <summary>
    /// Records when this controller last heard from the nodes connected to it, for the leader (which may be another
    /// controller) to judge them by. The embedded store has one controller, which hears every node itself: it keeps nothing.
    /// </summary>
    void PutNodesSeen(IReadOnlyDictionary<string, DateTimeOffset> seen);

    /// <summary>When a controller sharing the store last said it heard from the node; null when none did.</summary>
    DateTimeOffset? NodeSeen(string node);

    EventRecord AddEvent(string kind, string subject, string message);

    IReadOnlyList<EventRecord> ListEvents(long afterId, int limit);
}
