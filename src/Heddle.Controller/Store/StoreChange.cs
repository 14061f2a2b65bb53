using Heddle.Contracts.Api;

namespace Heddle.Controller.Store;

/// <summary>The kinds of record the change feed's consumers tell apart; a change of any other record is <see cref="Other"/>.</summary>
public enum RecordKind
{
    Other,

    /// <summary>A deployment's service record (its revision, walk, deletion); <see cref="StoreChange.Name"/> is the service.</summary>
    Service,

    /// <summary>Where an instance is placed; <see cref="StoreChange.Name"/> is its service.</summary>
    Instance,

    /// <summary>What an agent reported of an instance; <see cref="StoreChange.Name"/> is its service.</summary>
    Status,

    /// <summary>A node's record (address, condition, resources); <see cref="StoreChange.Name"/> is the node.</summary>
    Node,

    /// <summary>A shared base image; <see cref="StoreChange.Name"/> is the image.</summary>
    Image,

    /// <summary>A node certificate (issued or revoked); <see cref="StoreChange.Certificate"/> is the record put.</summary>
    Certificate,

    /// <summary>An event of the log; <see cref="StoreChange.Event"/> is the event stored.</summary>
    Event,

    /// <summary>A numbered revision of a deployment; <see cref="StoreChange.Name"/> is its service.</summary>
    Revision,

    /// <summary>Which service holds a slot of a family; <see cref="StoreChange.Name"/> is the family.</summary>
    Slot,

    /// <summary>A load balancer's record (rewritten by each of its heartbeats); <see cref="StoreChange.Name"/> is the balancer.</summary>
    Balancer,

    /// <summary>Which service holds a VIP; <see cref="StoreChange.Name"/> is the address.</summary>
    Vip,

    /// <summary>The host rollout (`heddle hostimage rollout`); <see cref="StoreChange.Name"/> is "current".</summary>
    HostRollout,
}

/// <summary>Which writer made a change the feed tells of.</summary>
public enum ChangeSource
{
    /// <summary>Another writer sharing the store (seen by the watch), or the copy loaded again from the store.</summary>
    Elsewhere,

    /// <summary>This controller: its API, its agents' reports and joins, its health monitor, its host rollout.</summary>
    Here,

    /// <summary>This controller's reconciler, placing and walking a service (it has queued what follows itself).</summary>
    Reconciler,
}

/// <summary>A record as it was before a change and as it is after it; null where there was none or is none now.</summary>
public sealed record Change<T>(T? Before, T? After)
    where T : class;

/// <summary>What an agent last reported of an instance (the status record), as the feed tells of it.</summary>
public sealed record ReportedState(string Role, int Index, long Generation, InstanceState State, int Restarts, long RunningRevision, IReadOnlyDictionary<string, int> Ports)
{
    public bool Ready => State == InstanceState.Ready;

    /// <summary>
    /// Whether the instance's peers see it differently (its readiness, its ports). With no report of its generation
    /// before, its peers saw it as placed: not ready and with no ports (a first report of Starting tells them nothing).
    /// </summary>
    public bool PeersSeeChanged(ReportedState? before) =>
        before is null ? Ready || Ports.Count > 0 : before.Ready != Ready || before.Ports.Count != Ports.Count || Ports.Any(p => !before.Ports.TryGetValue(p.Key, out var port) || port != p.Value);

    /// <summary>Whether the reconciler has something to look at again: a change of state, of restarts or of the revision running (a health gate, a deployment finished).</summary>
    public bool ProgressChanged(ReportedState? before) =>
        before is null || before.State != State || before.Restarts != Restarts || before.RunningRevision != RunningRevision;
}

/// <summary>
/// One committed change of the store as the change feed reports it (<see cref="IClusterStore.Changed"/>): the kind of
/// record and the name it is about, so no consumer reads key names, and for the records the dispatcher weighs, the
/// record before and after. <see cref="Source"/> says which writer made it.
/// </summary>
public sealed record StoreChange(RecordKind Kind, string Name, bool Deleted, ChangeSource Source)
{
    /// <summary>The event stored, for a put of an event; null otherwise.</summary>
    public EventRecord? Event { get; init; }

    /// <summary>The certificate record put, for a put of a certificate; null otherwise.</summary>
    public CertificateRecord? Certificate { get; init; }

    /// <summary>For a change of a service record: the record before and after.</summary>
    public Change<ServiceRecord>? Service { get; init; }

    /// <summary>For a change of where an instance is placed: the placement before and after.</summary>
    public Change<InstanceRecord>? Placement { get; init; }

    /// <summary>For a change of what an agent reported of an instance: the report before (of the same generation, or null) and after.</summary>
    public Change<ReportedState>? Report { get; init; }

    /// <summary>For a change of a node record: the record before and after.</summary>
    public Change<NodeRecord>? Node { get; init; }

    /// <summary>For a change of the host rollout: the rollout before and after.</summary>
    public Change<HostRollouts.HostRollout>? HostRollout { get; init; }
}
