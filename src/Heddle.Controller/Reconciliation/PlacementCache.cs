using Heddle.Controller.Store;
using Heddle.Placement;
using Heddle.Placement.Cluster;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// The allocator's view of the cluster (<see cref="ClusterState"/>: every Ready node and the instances placed on them),
/// kept between placement passes and brought up to date from the store's change feed, instead of built again from every
/// node and every instance for each pass. A pass of one service cost the size of the whole cluster that way: deploying
/// 1,000 services of 100 instances restored 100,000 placements a thousand times.
/// <list type="bullet">
/// <item>A change of where a service's instances are placed (from this controller or another sharing the store) marks the
/// service; before the next pass its placements are released and restored from the store.</item>
/// <item>A change of any node in what the allocator reads (joined, removed, its condition, cores, memory, labels, drivers
/// or fault domain), a different set of Ready nodes, or the resync interval having passed builds the whole view again:
/// these are rare, and a rebuild also clears what deleted services leave behind. A node record written again with none
/// of those changed (an agent's Hello) changes nothing.</item>
/// <item>The service a pass is for is taken out of the view (the pass places it afresh, as before) and marked, so the next
/// pass restores what it committed.</item>
/// <item>A pass whose commit is on its way (<see cref="Committing"/> to <see cref="Committed"/>) keeps what it placed in
/// the view, whatever the store says meanwhile: the passes of other services that run while it commits see those cores
/// taken. Once its commit has landed or failed, its placements are restored from the store.</item>
/// </list>
/// One pass at a time uses it (<see cref="Use"/> holds a lock for the pass); commits may overlap.
/// </summary>
internal sealed class PlacementCache
{
    private readonly IClusterStore _store;
    private readonly ControllerOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _use = new();
    private readonly Lock _marks = new();
    private HashSet<string> _dirty = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Planned> _inFlight = new(StringComparer.Ordinal); // under _marks
    private bool _nodesChanged = true;
    private ClusterState? _state;
    private HashSet<string> _ready = new(StringComparer.Ordinal);
    private IReadOnlySet<string>? _readyGiven;
    private DateTimeOffset _built;
    private IReadOnlyList<NodeRecord>? _nodesBuilt;
    private Dictionary<string, NodeRecord> _specs = new(StringComparer.Ordinal);

    public PlacementCache(IClusterStore store, ControllerOptions options, TimeProvider time)
    {
        _store = store;
        _options = options;
        _time = time;
        store.Changed += OnChanged;
    }

    /// <summary>How many times the whole view was built (for tests: a pass of one service must not build it).</summary>
    public int Builds { get; private set; }

    private void OnChanged(StoreChange change)
    {
        if (change.Kind is not (RecordKind.Instance or RecordKind.Node or RecordKind.Service))
        {
            return;
        }

        lock (_marks)
        {
            if (change.Kind == RecordKind.Node)
            {
                _nodesChanged = true;
            }
            else
            {
                _dirty.Add(change.Name); // a service record too: its tenant is read again with its instances
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="pass"/> on the view of the cluster without <paramref name="except"/>'s instances, placed on
    /// <paramref name="nodes"/> of which <paramref name="ready"/> are Ready. The pass may place and restore instances
    /// of that service in it; nothing else.
    /// </summary>
    public T Use<T>(IReadOnlyList<NodeRecord> nodes, IReadOnlySet<string> ready, string except, Func<ClusterState, T> pass)
    {
        lock (_use)
        {
            HashSet<string> dirty;
            bool nodesChanged;
            Dictionary<string, Planned> inFlight;
            lock (_marks)
            {
                dirty = _dirty;
                _dirty = new HashSet<string>(StringComparer.Ordinal);
                nodesChanged = _nodesChanged;
                _nodesChanged = false;
                inFlight = new Dictionary<string, Planned>(_inFlight, StringComparer.Ordinal);
            }

            // The same set as the last pass's (the reconciler makes it again only after a node changed) is not compared
            // name by name: that cost every node of the cluster on every pass.
            // A node record written again with nothing the allocator reads changed (a node saying Hello again) is no
            // change of the view: rebuilt for each, a cluster whose agents reconnected rebuilt it from every node and
            // every instance once per node.
            if (nodesChanged && _state is not null && !ReferenceEquals(nodes, _nodesBuilt) && SameForPlacement(nodes))
            {
                nodesChanged = false;
                _nodesBuilt = nodes;
            }

            if (_state is null || nodesChanged || !(ReferenceEquals(ready, _readyGiven) || ready.SetEquals(_ready)) || _time.GetUtcNow() - _built >= _options.ResyncInterval)
            {
                Build(nodes, ready);
                foreach (var (service, planned) in inFlight)
                {
                    RestorePlanned(_state!, service, planned);
                }
            }
            else
            {
                foreach (var service in dirty)
                {
                    if (inFlight.TryGetValue(service, out var planned))
                    {
                        RestorePlanned(_state, service, planned);
                    }
                    else
                    {
                        Restore(_state, service);
                    }
                }
            }

            var state = _state!;
            state.ReleaseService(except);
            try
            {
                return pass(state);
            }
            finally
            {
                lock (_marks)
                {
                    _dirty.Add(except); // restored from the store before the next pass: what was committed, not what was tried
                }
            }
        }
    }

    /// <summary>Whether <paramref name="nodes"/> are the nodes the view was built from in all the allocator reads of them.</summary>
    private bool SameForPlacement(IReadOnlyList<NodeRecord> nodes)
    {
        if (nodes.Count != _specs.Count)
        {
            return false;
        }

        foreach (var node in nodes)
        {
            if (!_specs.TryGetValue(node.Name, out var built))
            {
                return false;
            }

            if (!ReferenceEquals(node, built) && !(node.FaultDomain == built.FaultDomain && node.MemoryMiB == built.MemoryMiB && node.Condition == built.Condition
                && node.Drivers.SequenceEqual(built.Drivers, StringComparer.Ordinal)
                && node.Labels.Count == built.Labels.Count && node.Labels.All(l => built.Labels.TryGetValue(l.Key, out var v) && v == l.Value)
                && SharedValues.SameTopology(node.Cores, built.Cores)))
            {
                return false;
            }
        }

        return true;
    }

    private void Build(IReadOnlyList<NodeRecord> nodes, IReadOnlySet<string> ready)
    {
        var state = new ClusterState(nodes.Select(n => new NodeSpec
        {
            Name = n.Name,
            FaultDomain = n.FaultDomain,
            MemoryMiB = n.MemoryMiB,
            Cores = n.Cores,
            Labels = n.Labels,
            Condition = n.Condition switch
            {
                Store.NodeCondition.Ready => Placement.Cluster.NodeCondition.Ready,
                Store.NodeCondition.Draining => Placement.Cluster.NodeCondition.Draining,
                _ => Placement.Cluster.NodeCondition.Down,
            },
            Drivers = n.Drivers.ToHashSet(StringComparer.Ordinal),
        }), _options.PlacementSeed);
        _ready = new HashSet<string>(ready, StringComparer.Ordinal);
        _readyGiven = ready;
        _nodesBuilt = nodes;
        _specs = nodes.ToDictionary(n => n.Name, StringComparer.Ordinal);
        var tenants = _store.ListServices().ToDictionary(s => s.Name, s => s.Tenant, StringComparer.Ordinal);
        foreach (var instance in _store.ListInstances().Where(i => _ready.Contains(i.Node)))
        {
            state.Restore(ToPlacement(state, tenants.GetValueOrDefault(instance.Service, "default"), instance));
        }

        _state = state;
        _built = _time.GetUtcNow();
        Builds++;
    }

    /// <summary>
    /// The pass just made for <paramref name="service"/> (its instances as it left them) is being committed: until
    /// <see cref="Committed"/>, other passes see its placements as that pass made them, not as the store has them.
    /// Called by the pass itself, before the next pass can use the view.
    /// </summary>
    public void Committing(string service, string tenant, IReadOnlyList<InstanceRecord> instances)
    {
        lock (_marks)
        {
            _inFlight[service] = new Planned(tenant, instances);
        }
    }

    /// <summary>The commit begun by <see cref="Committing"/> has landed or failed: the next pass restores the service from the store.</summary>
    public void Committed(string service)
    {
        lock (_marks)
        {
            _inFlight.Remove(service);
            _dirty.Add(service);
        }
    }

    private void RestorePlanned(ClusterState state, string service, Planned planned)
    {
        state.ReleaseService(service);
        foreach (var instance in planned.Instances.Where(i => _ready.Contains(i.Node)))
        {
            state.Restore(ToPlacement(state, planned.Tenant, instance));
        }
    }

    private sealed record Planned(string Tenant, IReadOnlyList<InstanceRecord> Instances);

    /// <summary>A service's placements as the store has them now.</summary>
    private void Restore(ClusterState state, string service)
    {
        state.ReleaseService(service);
        var tenant = _store.GetService(service)?.Tenant ?? "default";
        foreach (var instance in _store.ListInstances(service).Where(i => _ready.Contains(i.Node)))
        {
            state.Restore(ToPlacement(state, tenant, instance));
        }
    }

    /// <summary>An instance as the allocator records it, with its node's fault domain (else the view copies it to add that).</summary>
    public static Heddle.Placement.Placement ToPlacement(ClusterState state, string tenant, InstanceRecord i) =>
        new(new RoleKey(tenant, i.Service, i.Role), i.Index, i.UpgradeDomain, i.Node, state.FaultDomainOf(i.Node) ?? string.Empty, i.Cpus, i.MemoryMiB);
}
