using Heddle.Contracts.Api;

namespace Heddle.Controller.Store;

/// <summary>
/// Everything the controller must not lose. Every method commits before it returns, so an answer given to a user
/// or an agent is durable. SQLite is the embedded implementation; an etcd-backed one can take its place.
/// </summary>
public interface IClusterStore : IDisposable
{
    /// <summary>A secret created at first start and kept for good (the API token, the join token).</summary>
    string GetOrCreateSecret(string name, Func<string> create);

    void PutPackage(PackageRecord package);

    PackageRecord? GetPackage(string sha256);

    /// <summary>
    /// Records a new revision of a service's deployment and returns it; clears a pending deletion. A service without
    /// a VIP gets the first of <paramref name="vipCandidates"/> no other service holds (none when the list is empty).
    /// </summary>
    long PutDeployment(string service, string tenant, string packageSha256, string configuration, IReadOnlyList<string> vipCandidates);

    ServiceRecord? GetService(string name);

    IReadOnlyList<ServiceRecord> ListServices();

    /// <summary>Marks the service for deletion (its instances are stopped, then it is removed). False if unknown.</summary>
    bool MarkDeleting(string name);

    void RemoveService(string name);

    IReadOnlyList<InstanceRecord> ListInstances(string? service = null);

    IReadOnlyList<InstanceRecord> ListInstancesOnNode(string node);

    /// <summary>Applies a placement pass if the service is still at <see cref="PlacementCommit.ExpectedRevision"/>; false on conflict.</summary>
    bool CommitPlacement(PlacementCommit commit);

    /// <summary>Stores what an agent reported. False when the instance is not (or no longer) placed there with that generation.</summary>
    bool UpdateInstanceStatus(string node, string service, string role, int index, long generation, string state, string? reason, IReadOnlyDictionary<string, int> ports, int restarts, int pid);

    long NextGeneration();

    void PutNode(NodeRecord node);

    NodeRecord? GetNode(string name);

    IReadOnlyList<NodeRecord> ListNodes();

    void SetNodeCondition(string name, string condition, DateTimeOffset lastSeen);

    EventRecord AddEvent(string kind, string subject, string message);

    IReadOnlyList<EventRecord> ListEvents(long afterId, int limit);
}
