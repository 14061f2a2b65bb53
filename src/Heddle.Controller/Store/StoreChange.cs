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

/// <summary>
/// One committed change of the store as the change feed reports it (<see cref="IClusterStore.Changed"/>): the kind of
/// record and the name it is about, so no consumer reads key names. <see cref="Local"/> says whether this controller
/// committed it; otherwise another writer sharing the store did (or the copy was loaded again from the store).
/// </summary>
public sealed record StoreChange(RecordKind Kind, string Name, bool Deleted, bool Local)
{
    /// <summary>The event stored, for a put of an event; null otherwise.</summary>
    public EventRecord? Event { get; init; }

    /// <summary>The certificate record put, for a put of a certificate; null otherwise.</summary>
    public CertificateRecord? Certificate { get; init; }
}
