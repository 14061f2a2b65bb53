using System.Threading.Channels;
using Heddle.Contracts.Api;
using Heddle.Controller.Store;

namespace Heddle.Controller;

/// <summary>The cluster's event log: durable in the store, and pushed live to anyone following it.</summary>
public sealed class EventLog(IClusterStore store)
{
    private readonly List<Channel<EventRecord>> _followers = [];
    private readonly Lock _lock = new();

    /// <summary>
    /// Stores an event; followers are told by the change feed (<see cref="Publishing.ChangeDispatcher"/>) before this
    /// returns. Without an owner it is the cluster's: only admins see it.
    /// </summary>
    public Task<EventRecord> AddAsync(EventKind kind, string subject, string message, EventOwner? owner = null, CancellationToken cancellationToken = default) =>
        store.AddEventAsync(kind, subject, message, owner, cancellationToken);

    /// <summary>Tells followers of an event stored (the change feed calls it for every event, this controller's and others').</summary>
    public void Publish(EventRecord record)
    {
        lock (_lock)
        {
            foreach (var follower in _followers)
            {
                follower.Writer.TryWrite(record);
            }
        }
    }

    /// <summary>Events after <paramref name="afterId"/>: those stored, then each new one as it happens.</summary>
    public async IAsyncEnumerable<EventRecord> FollowAsync(long afterId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<EventRecord>();
        lock (_lock)
        {
            _followers.Add(channel);
        }

        try
        {
            // Live events may come out of id order when controllers share a store (this one's own at once, another's
            // when the watch brings it), so what was already sent is remembered by id (the last 10,000), not by the highest one.
            var sent = new SortedSet<long>();
            foreach (var stored in store.ListEvents(afterId, int.MaxValue))
            {
                sent.Add(stored.Id);
                yield return stored;
            }

            await foreach (var live in channel.Reader.ReadAllAsync(cancellationToken))
            {
                if (live.Id > afterId && sent.Add(live.Id))
                {
                    if (sent.Count > 10_000)
                    {
                        sent.Remove(sent.Min);
                    }

                    yield return live;
                }
            }
        }
        finally
        {
            lock (_lock)
            {
                _followers.Remove(channel);
            }
        }
    }
}

/// <summary>
/// Whose an event is, fixed when it is written: the tenant and the incarnation of the service it is about, or a
/// tenant alone for its own image. Reading it never looks names up again, so a name deleted and taken by someone
/// else (another tenant's service, a node) does not hand its history over.
/// </summary>
public sealed record EventOwner(string Tenant, long? Incarnation)
{
    public static EventOwner Of(ServiceRecord service) => new(service.Tenant, service.Incarnation);

    /// <summary>A tenant's own image; null for a shared one (an admin's event).</summary>
    public static EventOwner? Of(ImageRecord image) => image.Tenant is { } tenant ? new(tenant, null) : null;
}

/// <summary>
/// What an event says happened: a closed set. Stored and shown (the API's <see cref="EventRecord.Kind"/>, `heddle events`,
/// the dashboard) as the member's name, so the words are those the string constants had; the wire record keeps a string,
/// so a client older than a new kind still reads it.
/// </summary>
public enum EventKind
{
    DeploymentAccepted,
    ImageImported,
    SlotsSwapped,
    VipMoved,
    VipUnusable,
    VipOwnerChanged,
    BalancerJoined,
    BalancerLeft,
    BalancerGone,
    ImageDeleted,
    InstancePlaced,
    InstanceMoved,
    InstanceRemoved,
    PlacementFailed,
    InstanceState,
    NodeJoined,
    NodeRemoved,
    NodeRefused,
    NodeEnrolled,
    TokenCreated,
    TokenRevoked,
    QuotaChanged,
    NodeDown,
    NodeUp,
    ServiceDeleting,
    ServiceDeleted,
    InstanceDraining,
    UpgradeStarted,
    UpgradeDomainStarted,
    UpgradeDomainUpdating,
    UpgradeDomainHealthy,
    UpgradeDomainFailed,
    UpgradeRollingBack,
    UpgradeRolledBack,
    UpgradeCompleted,
    UpgradePaused,
    UpgradeResumed,
    LeaderElected,
    MachineAdded,
    MachineRemoved,
    MachineHostImageSet,
    MachineBooted,
    UnknownMachineBooted,
    HostImageAdded,
    HostImageDeleted,
    HostRolloutStarted,
    HostNodeDraining,
    HostNodeRebooting,
    HostNodeBack,
    HostNodeHealthy,
    HostRebootRefused,
    HostRolloutPaused,
    HostRolloutResumed,
    HostRolloutRollingBack,
    HostRolloutRolledBack,
    HostRolloutCompleted,
    HostRolloutFailed,
    InstanceReturned,
}
