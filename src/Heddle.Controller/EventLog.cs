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
    public Task<EventRecord> AddAsync(string kind, string subject, string message, EventOwner? owner = null, CancellationToken cancellationToken = default) =>
        store.AddEventAsync(kind, subject, message, owner, cancellationToken);

    /// <summary>Stores several events of one owner in as few store writes as the store allows (followers are told as by <see cref="AddAsync"/>).</summary>
    public async Task AddAllAsync(IReadOnlyList<(string Kind, string Subject, string Message)> events, EventOwner? owner = null, CancellationToken cancellationToken = default)
    {
        if (events.Count == 0)
        {
            return;
        }

        await store.AddEventsAsync(events, owner, cancellationToken);
    }

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

public static class EventKinds
{
    public const string DeploymentAccepted = "DeploymentAccepted";
    public const string ImageImported = "ImageImported";
    public const string SlotsSwapped = "SlotsSwapped";
    public const string VipMoved = "VipMoved";
    public const string VipUnusable = "VipUnusable";
    public const string VipOwnerChanged = "VipOwnerChanged";
    public const string BalancerJoined = "BalancerJoined";
    public const string BalancerLeft = "BalancerLeft";
    public const string BalancerGone = "BalancerGone";
    public const string ImageDeleted = "ImageDeleted";
    public const string InstancePlaced = "InstancePlaced";
    public const string InstanceMoved = "InstanceMoved";
    public const string InstanceRemoved = "InstanceRemoved";
    public const string PlacementFailed = "PlacementFailed";
    public const string InstanceState = "InstanceState";
    public const string NodeJoined = "NodeJoined";
    public const string NodeRemoved = "NodeRemoved";
    public const string NodeRefused = "NodeRefused";
    public const string NodeEnrolled = "NodeEnrolled";
    public const string TokenCreated = "TokenCreated";
    public const string TokenRevoked = "TokenRevoked";
    public const string QuotaChanged = "QuotaChanged";
    public const string NodeDown = "NodeDown";
    public const string NodeUp = "NodeUp";
    public const string ServiceDeleting = "ServiceDeleting";
    public const string ServiceDeleted = "ServiceDeleted";
    public const string InstanceDraining = "InstanceDraining";
    public const string UpgradeStarted = "UpgradeStarted";
    public const string UpgradeDomainStarted = "UpgradeDomainStarted";
    public const string UpgradeDomainUpdating = "UpgradeDomainUpdating";
    public const string UpgradeDomainHealthy = "UpgradeDomainHealthy";
    public const string UpgradeDomainFailed = "UpgradeDomainFailed";
    public const string UpgradeRollingBack = "UpgradeRollingBack";
    public const string UpgradeRolledBack = "UpgradeRolledBack";
    public const string UpgradeCompleted = "UpgradeCompleted";
    public const string UpgradePaused = "UpgradePaused";
    public const string UpgradeResumed = "UpgradeResumed";
    public const string LeaderElected = "LeaderElected";
    public const string MachineAdded = "MachineAdded";
    public const string MachineRemoved = "MachineRemoved";
    public const string MachineHostImageSet = "MachineHostImageSet";
    public const string MachineBooted = "MachineBooted";
    public const string UnknownMachineBooted = "UnknownMachineBooted";
    public const string HostImageAdded = "HostImageAdded";
    public const string HostImageDeleted = "HostImageDeleted";
    public const string HostRolloutStarted = "HostRolloutStarted";
    public const string HostNodeDraining = "HostNodeDraining";
    public const string HostNodeRebooting = "HostNodeRebooting";
    public const string HostNodeBack = "HostNodeBack";
    public const string HostNodeHealthy = "HostNodeHealthy";
    public const string HostRebootRefused = "HostRebootRefused";
    public const string HostRolloutPaused = "HostRolloutPaused";
    public const string HostRolloutResumed = "HostRolloutResumed";
    public const string HostRolloutRollingBack = "HostRolloutRollingBack";
    public const string HostRolloutRolledBack = "HostRolloutRolledBack";
    public const string HostRolloutCompleted = "HostRolloutCompleted";
    public const string HostRolloutFailed = "HostRolloutFailed";
}
