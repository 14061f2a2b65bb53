using Heddle.Contracts.Api;
using Heddle.Controller.Store.Kv;
using Heddle.Controller.Upgrades;

namespace Heddle.Controller.Store;

/// <summary>Deployments, placement passes and what agents report: the writes that must hold together.</summary>
public sealed partial class KvClusterStore
{
    public async Task<bool> PutDeploymentAsync(DeploymentWrite write, CancellationToken cancellationToken = default)
    {
        var serviceKey = Keys.Service(write.Service);
        var entry = _mirror.Get(serviceKey);
        var current = entry is null ? null : Decode<ServiceRecord>(entry);
        if ((current?.Version ?? 0) != write.ExpectedVersion)
        {
            return false;
        }

        var now = _time.GetUtcNow();
        var conditions = new List<KvCondition> { new(serviceKey, entry?.ModRevision ?? 0) };
        var writes = new Writes();
        var vip = current?.Vip;
        if (vip is null && write.Vip is not null)
        {
            if (_mirror.Get(Keys.Vip(write.Vip)) is not null)
            {
                return false; // another deployment took this VIP meanwhile
            }

            vip = write.Vip;
            conditions.Add(new(Keys.Vip(vip), 0));
            writes.Put(Keys.Vip(vip), write.Service);
        }

        if (write.TenantVersion is { } checkedAt)
        {
            // The tenant's quota was checked against what it held at that version: another deployment of the tenant accepted since fails this one.
            conditions.Add(new(Keys.TenantAccepts(write.Tenant), checkedAt));
            writes.Put(Keys.TenantAccepts(write.Tenant), write.Service);
        }

        var uid = current?.Uid ?? 0;
        if (uid == 0 && write.Uid is { } chosen)
        {
            if (_mirror.Get(Keys.Uid(chosen)) is not null)
            {
                return false; // another deployment took this uid meanwhile
            }

            uid = chosen;
            conditions.Add(new(Keys.Uid(uid), 0));
            writes.Put(Keys.Uid(uid), write.Service);
        }

        var family = current?.Family ?? write.Family ?? write.Service;
        if (current is null)
        {
            var slot = Keys.Slot(family, write.Slot);
            if (_mirror.Get(slot) is not null)
            {
                return false; // another deployment took this slot meanwhile
            }

            conditions.Add(new(slot, 0));
            writes.Put(slot, write.Service);
        }

        var service = current is null
            ? new ServiceRecord(write.Service, write.Tenant, write.Number, write.PackageSha256, write.Configuration, false, now, vip)
            {
                Version = 1, LastRevision = write.Number, Walk = write.Walk, Family = family, Slot = write.Slot, Uid = uid,
            }
            : current with
            {
                Tenant = write.Tenant, Revision = write.Number, PackageSha256 = write.PackageSha256, Configuration = write.Configuration, Deleting = false,
                Updated = now, Vip = vip, Version = current.Version + 1, LastRevision = write.Number, Walk = write.Walk ?? current.Walk, Uid = uid,
            };
        writes.Put(serviceKey, service);
        var revisions = ReadAll<RevisionRecord>(Keys.Revisions(write.Service));
        foreach (var open in revisions.Where(r => r.Outcome == RevisionOutcome.InProgress))
        {
            writes.Put(Keys.Revision(write.Service, open.Number), open with { Outcome = write.PreviousCompleted ? RevisionOutcome.Completed : RevisionOutcome.Superseded });
        }

        writes.Put(Keys.Revision(write.Service, write.Number),
            new RevisionRecord(write.Service, write.Number, write.PackageSha256, write.Configuration, now, write.Changes, RevisionOutcome.InProgress));

        // History beyond the limit goes, except what an instance still runs or is to run (a rollback needs it).
        var instances = ListInstances(write.Service);
        var inUse = instances.Select(i => i.Revision).Concat(instances.Select(i => i.RunningRevision)).ToHashSet();
        foreach (var old in revisions.Where(r => r.Number <= write.Number - Math.Max(1, write.HistoryLimit) && !inUse.Contains(r.Number)))
        {
            writes.Delete(Keys.Revision(write.Service, old.Number));
        }

        // The events are the service's as written: a new one's incarnation is this commit's revision.
        return await CommitToldAsync(conditions, writes.List, revision => [.. write.Events.Select(e => e with { Owner = new EventOwner(write.Tenant, entry?.CreateRevision ?? revision) })], write.Events.Count > 0,
            ChangeSource.Here, cancellationToken);
    }

    public IReadOnlyDictionary<string, string> ListVips() =>
        _mirror.List("vips/").ToDictionary(e => e.Key["vips/".Length..], Decode<string>, StringComparer.Ordinal);

    public IReadOnlyList<InstanceRecord> ListInstances(string? service = null)
    {
        if (service is null)
        {
            // Every service's listing, each made again only when that service changed (a reconcile pass lists every instance).
            return [.. ListPlacedServices().SelectMany(ListInstances)];
        }

        // One service's listing is asked for by every goal state that names one of its instances, by each reconcile pass
        // and by the views: it is made once per change of the service's placements or reports, not once per caller.
        var (placements, statuses) = (Keys.Instances(service), Keys.Statuses(service));
        // The versions are read before the listing: a listing is at least as new as the versions it is kept under.
        return Listed(_listings, service, (_mirror.VersionOf(placements), _mirror.VersionOf(statuses)), () => Sorted(Merge(placements, statuses)));
    }

    /// <summary>A service's listing kept under <paramref name="version"/>, or made again by <paramref name="list"/> (and kept) when that moved on.</summary>
    private static InstanceRecord[] Listed(System.Collections.Concurrent.ConcurrentDictionary<string, Listing> listings, string service, (long, long) version,
        Func<InstanceRecord[]> list)
    {
        if (listings.TryGetValue(service, out var known) && known.Version == version)
        {
            return known.Instances;
        }

        var listed = list();
        if (listed.Length == 0)
        {
            listings.TryRemove(service, out _); // a service deleted (or never deployed) keeps nothing here
        }
        else
        {
            listings[service] = new Listing(version, listed);
        }

        return listed;
    }

    public IReadOnlyList<InstanceRecord> ListPlacements(string service)
    {
        var placements = Keys.Instances(service);
        return Listed(_placements, service, (_mirror.VersionOf(placements), 0), () => [.. _mirror.List(placements).Select(Decode<InstanceRecord>)]); // key order is role and index order
    }

    /// <summary>Each service's placements alone, kept under the version of its placements only (reports do not move it).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Listing> _placements = new(StringComparer.Ordinal);

    public InstanceRecord? GetInstance(string service, string role, int index) =>
        _mirror.Get(Keys.Instance(service, role, index)) is { } entry ? WithStatus(Decode<InstanceRecord>(entry)) : null;

    public IReadOnlyList<string> ListPlacedServices() => [.. PlacedServices().Order(StringComparer.Ordinal)];

    /// <summary>The services with an instance placed, from the placements' keys (a service's keys are next to each other in key order).</summary>
    private List<string> PlacedServices()
    {
        var names = new List<string>();
        foreach (var entry in _mirror.List("instances/"))
        {
            var rest = entry.Key.AsSpan("instances/".Length);
            var name = rest[..Math.Max(0, rest.IndexOf('/'))];
            if (names.Count == 0 || !name.SequenceEqual(names[^1]))
            {
                names.Add(name.ToString());
            }
        }

        return names;
    }

    /// <summary>In service, role and index order; an instance's three are its own, so the order is total. Sorted in place, not
    /// through LINQ's keyed sort (a twentieth of the deploying controller's time went there, a listing made for each report).</summary>
    private static InstanceRecord[] Sorted(IEnumerable<InstanceRecord> instances)
    {
        InstanceRecord[] sorted = [.. instances];
        Array.Sort(sorted, static (a, b) =>
        {
            var order = string.CompareOrdinal(a.Service, b.Service);
            if (order == 0)
            {
                order = string.CompareOrdinal(a.Role, b.Role);
            }

            return order != 0 ? order : a.Index.CompareTo(b.Index);
        });
        return sorted;
    }

    /// <summary>The last listing of each service's instances, with the versions of its placements and reports it was made at (records are immutable, so a listing is shared).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Listing> _listings = new(StringComparer.Ordinal);

    private sealed record Listing((long Placements, long Statuses) Version, InstanceRecord[] Instances);

    /// <summary>Every node's placements, kept grouped (a report, an event or a heartbeat does not touch them).</summary>
    private readonly MirrorGrouping<InstanceRecord> _placementsByNode;

    public IReadOnlyList<InstanceRecord> ListInstancesOnNode(string node)
    {
        var placed = _placementsByNode.Of(node);
        for (var i = 0; i < placed.Length; i++)
        {
            placed[i] = WithStatus(placed[i]);
        }

        return Sorted(placed);
    }

    /// <summary>A placed instance with what its agent last reported of its generation.</summary>
    private InstanceRecord WithStatus(InstanceRecord placed) =>
        _mirror.Get(Keys.Status(placed.Service, placed.Role, placed.Index)) is { } entry && Decode<InstanceStatus>(entry) is { } status && status.Generation == placed.Generation
            ? status.On(placed)
            : placed;

    /// <summary>Each placed instance with what its agent last reported of its generation (a report of an older generation is not its).</summary>
    private IEnumerable<InstanceRecord> Merge(string placements, string statuses)
    {
        // Both listings are in key order, and a placement's key and its report's end alike ("{service}/{role}/{index}"):
        // walked side by side, with no dictionary and no key cut out of either (this ran for every report of the service).
        var reports = _mirror.List(statuses);
        var next = 0;
        foreach (var entry in _mirror.List(placements))
        {
            var placed = Decode<InstanceRecord>(entry);
            var name = entry.Key.AsSpan("instances/".Length);
            var order = -1;
            while (next < reports.Count && (order = reports[next].Key.AsSpan("status/".Length).CompareTo(name, StringComparison.Ordinal)) < 0)
            {
                next++; // a report whose placement is gone
            }

            yield return next < reports.Count && order == 0 && Decode<InstanceStatus>(reports[next]) is { } status && status.Generation == placed.Generation ? status.On(placed) : placed;
        }
    }

    public async Task<bool> CommitPlacementAsync(PlacementCommit commit, CancellationToken cancellationToken = default)
    {
        var serviceKey = Keys.Service(commit.Service);
        var entry = _mirror.Get(serviceKey);
        if (entry is null || Decode<ServiceRecord>(entry) is not { } service || service.Version != commit.ExpectedVersion)
        {
            return false;
        }

        var now = _time.GetUtcNow();
        var conditions = new List<KvCondition> { new(serviceKey, entry.ModRevision) };
        if (commit.Fence is { } fence)
        {
            conditions.Add(new(fence.Key, fence.Revision));
        }

        var writes = new Writes();
        foreach (var (role, index) in commit.Removals)
        {
            writes.Delete(Keys.Instance(commit.Service, role, index));
            writes.Delete(Keys.Status(commit.Service, role, index));
        }

        foreach (var i in commit.Upserts)
        {
            // Started afresh: what an agent said of an earlier run is not this run's.
            writes.Put(Keys.Instance(i.Service, i.Role, i.Index), i with
            {
                Restarts = 0, Pid = 0, Updated = now, RunningRevision = 0, Draining = false, ReadySince = null, LastFailure = null, LastStderr = null,
            });
            writes.Delete(Keys.Status(i.Service, i.Role, i.Index));
        }

        foreach (var mark in commit.Marks)
        {
            var key = Keys.Instance(commit.Service, mark.Role, mark.Index);
            if (_mirror.Get(key) is { } placed)
            {
                // Placement keys are written by placement passes only, each under the service key's condition: no other writer to race.
                writes.Put(key, Decode<InstanceRecord>(placed) with { Revision = mark.Revision, Draining = mark.Draining });
            }
        }

        if (commit.DesiredRevision is { } desired)
        {
            var revision = GetRevision(commit.Service, desired) ?? throw new InvalidOperationException($"revision {desired} of {commit.Service} is not kept");
            service = service with { Revision = desired, PackageSha256 = revision.PackageSha256, Configuration = revision.Configuration, Updated = now };
        }

        if (commit.Walk is { } walk)
        {
            service = service with { Walk = walk.Walk };
        }

        foreach (var (number, outcome) in commit.Outcomes)
        {
            if (GetRevision(commit.Service, number) is { } revision)
            {
                writes.Put(Keys.Revision(commit.Service, number), revision with { Outcome = outcome });
            }
        }

        writes.Put(serviceKey, service with { Version = service.Version + 1 });
        return await CommitToldAsync(conditions, writes.List, commit.Events, commit.Source, cancellationToken);
    }

    public async Task<bool> UpdateInstanceStatusAsync(InstanceReportRecord report, CancellationToken cancellationToken = default) =>
        (await UpdateInstanceStatusAsync(report, null, cancellationToken)).Updated;

    public async Task<(bool Updated, EventRecord? Event)> UpdateInstanceStatusAsync(InstanceReportRecord report, NewEvent? withEvent, CancellationToken cancellationToken = default)
    {
        var placementKey = Keys.Instance(report.Service, report.Role, report.Index);
        var statusKey = Keys.Status(report.Service, report.Role, report.Index);
        for (var attempt = 0; attempt < Retries; attempt++)
        {
            var placement = _mirror.Get(placementKey);
            if (placement is null || Decode<InstanceRecord>(placement) is not { } placed || placed.Node != report.Node || placed.Generation != report.Generation)
            {
                return (false, null);
            }

            if (report.Session != 0 && NodeSession(report.Node) != report.Session)
            {
                // Made on a stream of the node that another has replaced (it said Hello again, here or to another
                // controller): what that stream says now may be older than what the new one said.
                return (false, null);
            }

            var statusEntry = _mirror.Get(statusKey);
            var previous = statusEntry is not null && Decode<InstanceStatus>(statusEntry) is { } s && s.Generation == placed.Generation ? s.On(placed) : placed;
            if (previous.State == InstanceState.Stopped && report.State != InstanceState.Stopped && Read<ServiceRecord>(Keys.Service(report.Service)) is { Deleting: true })
            {
                // Stopped is final for an instance of a service being deleted: no goal state names it any more, so no
                // agent starts it again. A report saying it runs was on its way before: one that another controller,
                // whose stream with the node had ended, wrote late. Taken, it would hold the deletion for ever.
                return (false, null);
            }

            var now = _time.GetUtcNow();
            // Ready since: kept while it stays Ready at the same revision, set when it becomes Ready (or Ready at a new one).
            var readySince = report.State != InstanceState.Ready ? null
                : previous.State == InstanceState.Ready && previous.RunningRevision == report.Revision && previous.ReadySince is not null ? previous.ReadySince : now;
            var status = new InstanceStatus(report.Generation, report.State, report.Reason, new Dictionary<string, int>(report.Ports), report.Restarts, report.Pid, now,
                report.Revision, readySince, report.Failure ?? previous.LastFailure, report.Failure is null ? previous.LastStderr : report.LastStderr)
            {
                DiskUsedMiB = report.DiskUsedMiB, DiskSizeMiB = report.DiskSizeMiB,
            };
            List<KvCondition> conditions = [new(placementKey, placement.ModRevision), new(statusKey, statusEntry?.ModRevision ?? 0)];
            if (report.Session != 0)
            {
                conditions.Add(new(Keys.Session(report.Node), report.Session));
            }

            List<KvWrite> writes = [Put(statusKey, status)];
            if (withEvent is not null)
            {
                var write = EventWrite(now, withEvent.Kind.ToString(), withEvent.Subject, withEvent.Message, withEvent.Owner);
                conditions.Add(new(write.Key, 0));
                writes.Add(write);
            }

            var result = await _mirror.CommitAsync(conditions, writes, cancellationToken);
            if (result.Succeeded)
            {
                if (withEvent is null)
                {
                    return (true, null);
                }

                await EventsWrittenAsync(1, cancellationToken);
                return (true, Recorded(result.Revision, now, withEvent.Kind.ToString(), withEvent.Subject, withEvent.Message, withEvent.Owner));
            }
        }

        throw new KvUnavailableException($"store busy: {statusKey} changed under {Retries} writes in a row");
    }

    /// <summary>What an agent last reported of one generation of an instance.</summary>
    private sealed record InstanceStatus(
        long Generation, InstanceState State, string? Reason, Dictionary<string, int> Ports, int Restarts, int Pid, DateTimeOffset Updated,
        long RunningRevision, DateTimeOffset? ReadySince, string? LastFailure, string? LastStderr)
    {
        public int DiskUsedMiB { get; init; }

        public int DiskSizeMiB { get; init; }

        /// <summary>
        /// The placement this report was last put on, and the record that made. A service's listing is made again for every
        /// report of any of its instances, and a node's goal state for every change near it: each made every other
        /// instance's record again (the controller's most allocated record at 2,500 nodes, more than the reports written).
        /// Not part of the report, nor stored: a field the record's equality compares, which nothing asks of a report.
        /// </summary>
        private Merged? _merged;

        private sealed record Merged(InstanceRecord Placed, InstanceRecord Record);

        public InstanceRecord On(InstanceRecord placed)
        {
            if (Volatile.Read(ref _merged) is { } merged && ReferenceEquals(merged.Placed, placed))
            {
                return merged.Record;
            }

            var record = placed with
            {
                State = State, Reason = Reason, Ports = Ports, Restarts = Restarts, Pid = Pid, Updated = Updated, RunningRevision = RunningRevision,
                ReadySince = ReadySince, LastFailure = LastFailure, LastStderr = LastStderr, DiskUsedMiB = DiskUsedMiB, DiskSizeMiB = DiskSizeMiB,
            };
            Volatile.Write(ref _merged, new Merged(placed, record));
            return record;
        }
    }
}
