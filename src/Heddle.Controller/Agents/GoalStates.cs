using Heddle.Contracts.Agents;
using Heddle.Controller.Store;

namespace Heddle.Controller.Agents;

/// <summary>
/// Derives a node's goal state from the store: every instance placed there of a service not being deleted, each with
/// its role's other instances (peers: node address, ports, readiness); and, while a host rollout reboots the node, the image it reboots into.
/// </summary>
public sealed class GoalStates(IClusterStore store, ServiceModels models, IHostRolloutStore? hostRollouts = null)
{
    private long _version;

    /// <summary>Whether the node's goal state names the blob (as a package or an image): what a node may download.</summary>
    public bool Names(string node, string sha256) => ViewOf(node).Instances.Any(i => i.Spec.PackageSha256 == sha256 || i.Spec.ImageSha256 == sha256);

    /// <summary>The node's goal state, whole.</summary>
    public GoalState For(string node) => ViewOf(node).ToGoalState();

    /// <summary>The node's goal state as a stream keeps it (<see cref="GoalView"/>).</summary>
    public GoalView ViewOf(string node)
    {
        var version = Interlocked.Increment(ref _version);
        var rebootInto = hostRollouts?.GetHostRollout()?.RebootInto(node) ?? string.Empty;
        var services = new Dictionary<string, ServiceRecord?>(StringComparer.Ordinal);
        var revisions = new Dictionary<(string, long), (RevisionRecord Record, ServiceModel Model)?>();
        var members = new Dictionary<string, IReadOnlyDictionary<string, Peer[]>>(StringComparer.Ordinal);
        var specs = _specs.GetOrAdd(node, _ => new Dictionary<string, CachedSpec>(StringComparer.Ordinal));
        var items = new List<GoalEntry>();
        lock (specs)
        {
            foreach (var instance in store.ListInstancesOnNode(node))
            {
                if (!services.TryGetValue(instance.Service, out var service))
                {
                    service = services[instance.Service] = store.GetService(instance.Service);
                }

                if (service is null || service.Deleting)
                {
                    continue;
                }

                if (!revisions.TryGetValue((instance.Service, instance.Revision), out var revision))
                {
                    var record = store.GetRevision(instance.Service, instance.Revision);
                    revision = revisions[(instance.Service, instance.Revision)] =
                        record is not null && models.For(record.PackageSha256, record.Configuration) is { } parsed ? (record, parsed) : null;
                }

                if (revision is not { } known)
                {
                    continue;
                }

                var image = known.Model.Definition.FindRole(instance.Role)?.Image is { } imageName ? ImageNames.Resolve(store, service.Tenant, imageName)?.Sha256 : null;
                if (!specs.TryGetValue(instance.Id, out var cached) || !ReferenceEquals(cached.Record, instance) || !ReferenceEquals(cached.Revision, known.Record)
                    || cached.Uid != service.Uid || cached.Image != image)
                {
                    specs[instance.Id] = cached = new CachedSpec(instance, known.Record, service.Uid, image, Spec(instance, known.Record, known.Model, service.Uid, image));
                }

                if (!members.TryGetValue(instance.Service, out var peers))
                {
                    peers = members[instance.Service] = PeersOf(instance.Service);
                }

                items.Add(new GoalEntry(cached.Spec, new RolePeers(peers.GetValueOrDefault(instance.Role, []), instance.Index)));
            }

            if (specs.Count > items.Count)
            {
                // Instances gone from the node: their goals are not kept.
                var here = items.Select(i => i.Spec.InstanceId).ToHashSet(StringComparer.Ordinal);
                foreach (var gone in specs.Keys.Where(id => !here.Contains(id)).ToList())
                {
                    specs.Remove(gone);
                }
            }
        }

        // In instance id order: what the instance changes of PeerChanges keep (PeerChanges.ApplyTo).
        items.Sort((a, b) => string.CompareOrdinal(a.Spec.InstanceId, b.Spec.InstanceId));
        return new GoalView(version, rebootInto, items);
    }

    /// <summary>Each node's instances' goals without peers, by instance id, with what they were made from.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Dictionary<string, CachedSpec>> _specs = new(StringComparer.Ordinal);

    private sealed record CachedSpec(InstanceRecord Record, RevisionRecord Revision, int Uid, string? Image, InstanceGoal Spec);

    /// <summary>An instance's goal, without peers (they go beside it: <see cref="RolePeers"/>).</summary>
    private static InstanceGoal Spec(InstanceRecord instance, RevisionRecord revision, ServiceModel model, int uid, string? image)
    {
        var item = new InstanceGoal
        {
            InstanceId = instance.Id,
            Service = instance.Service,
            Role = instance.Role,
            Index = instance.Index,
            UpgradeDomain = instance.UpgradeDomain,
            PackageSha256 = revision.PackageSha256,
            PackagePath = AgentEndpoints.BlobPrefix + revision.PackageSha256,
            MemoryMib = instance.MemoryMiB,
            Generation = instance.Generation,
            Revision = instance.Revision,
            Uid = uid,
        };
        if (image is not null)
        {
            item.ImageSha256 = image;
            item.ImagePath = AgentEndpoints.BlobPrefix + image;
        }

        item.Cpus.AddRange(instance.Cpus);
        foreach (var (name, value) in model.SettingsOf(instance.Role))
        {
            item.Settings[name] = value;
        }

        return item;
    }

    /// <summary>
    /// A service's instances as peers, by role in index order: made once per change of the service's instances (or of a
    /// node's record), and shared by every goal state that names one of them (the messages are only read once built).
    /// Made per goal state, they were most of what the controller allocated while instances came up: every node with an
    /// instance of a service got every one of its peers anew each time one of them changed.
    /// </summary>
    private IReadOnlyDictionary<string, Peer[]> PeersOf(string service)
    {
        var nodes = store.NodesVersion; // read before the listing: a set of peers is at least as new as what it is kept under
        var instances = store.ListInstances(service);
        if (_peers.TryGetValue(service, out var known) && ReferenceEquals(known.Instances, instances))
        {
            if (known.Nodes == nodes)
            {
                return known.ByRole;
            }

            // A node changed, most often in nothing a peer holds (a node saying Hello again, going Down or coming back):
            // the peers are kept, the same objects, when every address they name is still their node's. Made anew for
            // each node that said Hello, every goal state sent after it differed from the last in every peer.
            if (AddressesHold(known.ByRole))
            {
                _peers[service] = known with { Nodes = nodes };
                return known.ByRole;
            }
        }

        // A peer whose instance changed in nothing a peer holds stays the object it was: goal states that share it are
        // compared by reference, and only the peers that changed are made and sent.
        var addresses = new Dictionary<string, string>(StringComparer.Ordinal);
        var byRole = new Dictionary<string, Peer[]>(StringComparer.Ordinal);
        foreach (var group in instances.GroupBy(i => i.Role, StringComparer.Ordinal))
        {
            var before = known?.ByRole.GetValueOrDefault(group.Key) ?? [];
            var peers = new List<Peer>();
            var at = 0;
            foreach (var instance in group.OrderBy(i => i.Index))
            {
                var address = AddressOf(instance.Node, addresses);
                while (at < before.Length && before[at].Index < instance.Index)
                {
                    at++;
                }

                peers.Add(at < before.Length && before[at].Index == instance.Index && Holds(before[at], instance, address) ? before[at] : Peer(instance, address));
            }

            byRole[group.Key] = [.. peers];
        }

        if (instances.Count == 0)
        {
            _peers.TryRemove(service, out _);
        }
        else
        {
            _peers[service] = new ServicePeers(instances, nodes, byRole);
        }

        return byRole;
    }

    private bool AddressesHold(IReadOnlyDictionary<string, Peer[]> byRole)
    {
        foreach (var peers in byRole.Values)
        {
            foreach (var peer in peers)
            {
                if ((store.GetNode(peer.Node)?.Address ?? string.Empty) != peer.Address)
                {
                    return false;
                }
            }
        }

        return true;
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ServicePeers> _peers = new(StringComparer.Ordinal);

    private sealed record ServicePeers(IReadOnlyList<InstanceRecord> Instances, long Nodes, IReadOnlyDictionary<string, Peer[]> ByRole);

    /// <summary>A peer's node address, read once per set of peers (not every node's: that was a pass over the cluster per goal state).</summary>
    private string AddressOf(string node, Dictionary<string, string> addresses)
    {
        if (!addresses.TryGetValue(node, out var address))
        {
            addresses[node] = address = store.GetNode(node)?.Address ?? string.Empty;
        }

        return address;
    }

    /// <summary>Whether <paramref name="peer"/> says all a peer says of <paramref name="instance"/> at <paramref name="address"/> (its index is the instance's).</summary>
    private static bool Holds(Peer peer, InstanceRecord instance, string address)
    {
        if (peer.UpgradeDomain != instance.UpgradeDomain || peer.Node != instance.Node || peer.Address != address
            || peer.Ready != (instance.State == InstanceState.Ready) || peer.Ports.Count != instance.Ports.Count)
        {
            return false;
        }

        foreach (var (name, port) in instance.Ports)
        {
            if (!peer.Ports.TryGetValue(name, out var held) || held != port)
            {
                return false;
            }
        }

        return true;
    }

    private static Peer Peer(InstanceRecord instance, string address)
    {
        var peer = new Peer
        {
            InstanceId = instance.Id,
            Index = instance.Index,
            UpgradeDomain = instance.UpgradeDomain,
            Node = instance.Node,
            Address = address,
            Ready = instance.State == InstanceState.Ready,
        };
        foreach (var (name, port) in instance.Ports)
        {
            peer.Ports[name] = port;
        }

        return peer;
    }
}
