namespace Heddle.Placement.Cluster;

/// <summary>
/// The allocator's in-process view of a cluster snapshot: every node's free capacity plus the indexes that make a
/// placement cost microseconds at 10,000 nodes. Built once from a snapshot (nodes and existing placements), then
/// changed only by placing and releasing instances. Deterministic: the seed fixes the order nodes are tried in.
/// </summary>
public sealed class ClusterState
{
    private readonly List<NodeState> _nodes = [];
    private readonly Dictionary<string, int> _nodeByName = new(StringComparer.Ordinal);
    private readonly List<string> _faultDomains = [];
    private readonly Dictionary<string, int> _faultDomainByName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _tenants = new(StringComparer.Ordinal);
    private readonly Dictionary<RoleKey, RoleState> _roles = [];
    private readonly Dictionary<string, List<RoleKey>> _rolesByService = new(StringComparer.Ordinal);

    // The roles of the service released last, emptied, for that service's placements restored next (a placement pass
    // releases its service and restores it at once): their tables keep their size instead of growing again from empty.
    private readonly Dictionary<RoleKey, RoleState> _released = [];
    private readonly Dictionary<long, HashSet<int>> _tenantIdleNodes = [];

    // _buckets[fd][w]: the Ready nodes of fault domain fd with exactly w free whole cores, in seeded order.
    private readonly List<int>[][] _buckets;
    private readonly int[] _bucketOf;
    private readonly int[] _positionInBucket;
    private readonly long[] _freeWholeCoresByFaultDomain;

    public ClusterState(IEnumerable<NodeSpec> nodes, int seed)
    {
        var specs = nodes.ToList();
        foreach (var spec in specs)
        {
            if (!_nodeByName.TryAdd(spec.Name, _nodes.Count))
            {
                throw new ArgumentException($"node '{spec.Name}' appears twice");
            }

            if (!_faultDomainByName.TryGetValue(spec.FaultDomain, out var fd))
            {
                fd = _faultDomains.Count;
                _faultDomainByName[spec.FaultDomain] = fd;
                _faultDomains.Add(spec.FaultDomain);
            }

            _nodes.Add(new NodeState(_nodes.Count, spec, fd) { Condition = spec.Condition });
            TotalCpus += spec.LogicalCpuCount;
        }

        MaxCores = _nodes.Count == 0 ? 0 : _nodes.Max(n => n.Cores.Length);
        MaxThreadsPerCore = _nodes.Count == 0 ? 1 : _nodes.Max(n => n.ThreadsPerWholeCore);
        _buckets = new List<int>[_faultDomains.Count][];
        for (var fd = 0; fd < _buckets.Length; fd++)
        {
            _buckets[fd] = new List<int>[MaxCores + 1];
            for (var w = 0; w <= MaxCores; w++)
            {
                _buckets[fd][w] = [];
            }
        }

        _bucketOf = new int[_nodes.Count];
        _positionInBucket = new int[_nodes.Count];
        _freeWholeCoresByFaultDomain = new long[_faultDomains.Count];
        Array.Fill(_bucketOf, -1);

        // The seeded shuffle decides which of equally good nodes is tried first, so runs repeat exactly for a seed.
        var order = Enumerable.Range(0, _nodes.Count).ToArray();
        new Random(seed).Shuffle(order);
        foreach (var index in order.Where(i => _nodes[i].Condition == NodeCondition.Ready))
        {
            AddToBucket(_nodes[index]);
        }
    }

    public int NodeCount => _nodes.Count;

    /// <summary>Logical CPUs of all nodes, whatever their condition.</summary>
    public long TotalCpus { get; private set; }

    /// <summary>Logical CPUs allocated to instances, on all nodes. Kept as a running count: reading it costs nothing.</summary>
    public long AllocatedCpus { get; private set; }

    public int FaultDomainCount => _faultDomains.Count;

    internal int MaxCores { get; }

    internal int MaxThreadsPerCore { get; }

    internal IReadOnlyList<NodeState> Nodes => _nodes;

    internal IReadOnlyList<string> FaultDomains => _faultDomains;

    /// <summary>The nodes as specified, with their current condition.</summary>
    public IEnumerable<NodeSpec> NodeSpecs => _nodes.Select(n => n.Condition == n.Spec.Condition ? n.Spec : n.Spec with { Condition = n.Condition });

    public IEnumerable<Placement> Placements => _roles.Values.SelectMany(r => r.Placements.Values);

    public IEnumerable<RoleKey> Roles => _roles.Where(r => r.Value.Placements.Count > 0).Select(r => r.Key);

    public IReadOnlyCollection<Placement> PlacementsOf(RoleKey role) =>
        _roles.TryGetValue(role, out var state) ? state.Placements.Values : [];

    /// <summary>Logical CPUs and memory of Ready nodes, and how much of it is allocated.</summary>
    public (long TotalCpus, long UsedCpus, long TotalMemoryMiB, long UsedMemoryMiB) Utilisation()
    {
        long cpus = 0, usedCpus = 0, memory = 0, usedMemory = 0;
        foreach (var node in _nodes.Where(n => n.Condition == NodeCondition.Ready))
        {
            cpus += node.Spec.LogicalCpuCount;
            usedCpus += node.Spec.LogicalCpuCount - node.FreeCpus;
            memory += node.Spec.MemoryMiB;
            usedMemory += node.Spec.MemoryMiB - node.FreeMemoryMiB;
        }

        return (cpus, usedCpus, memory, usedMemory);
    }

    /// <summary>Marks a node down or draining (it receives nothing) or Ready again. Its placements stay until released.</summary>
    public void SetCondition(string node, NodeCondition condition)
    {
        var state = _nodes[_nodeByName[node]];
        if (state.Condition == condition)
        {
            return;
        }

        if (state.Condition == NodeCondition.Ready)
        {
            RemoveFromBucket(state);
        }

        state.Condition = condition;
        if (condition == NodeCondition.Ready)
        {
            AddToBucket(state);
        }
    }

    /// <summary>The fault domain of a node of this view; null for a node it does not have.</summary>
    public string? FaultDomainOf(string node) => _nodeByName.TryGetValue(node, out var index) ? _nodes[index].Spec.FaultDomain : null;

    /// <summary>Records an existing placement from a snapshot, keeping its exact CPUs. False if it conflicts with what is recorded.</summary>
    public bool Restore(Placement placement)
    {
        if (!_nodeByName.TryGetValue(placement.Node, out var index) || Role(placement.Role).Placements.ContainsKey(placement.Index))
        {
            return false;
        }

        var node = _nodes[index];
        var tenant = TenantId(placement.Role.Tenant);
        var before = node.FreeWholeCores;
        if (!node.TryClaim(tenant, placement.Cpus, placement.MemoryMiB))
        {
            return false;
        }

        Reindex(node, tenant, before);
        AllocatedCpus += placement.Cpus.Count;
        Record(placement.FaultDomain == node.Spec.FaultDomain ? placement : placement with { FaultDomain = node.Spec.FaultDomain }, node.FaultDomain);
        return true;
    }

    /// <summary>Frees one instance's CPUs and memory.</summary>
    public bool Release(RoleKey role, int index)
    {
        if (!_roles.TryGetValue(role, out var state) || !state.Placements.Remove(index, out var placement))
        {
            return false;
        }

        var node = _nodes[_nodeByName[placement.Node]];
        var tenant = TenantId(role.Tenant);
        var before = node.FreeWholeCores;
        node.Release(tenant, placement.Cpus, placement.MemoryMiB);
        Reindex(node, tenant, before);
        AllocatedCpus -= placement.Cpus.Count;
        state.Count(node.FaultDomain, placement.UpgradeDomain, -1);
        return true;
    }

    /// <summary>Frees every instance of a service's roles (of any tenant); how many were freed.</summary>
    public int ReleaseService(string service)
    {
        if (!_rolesByService.Remove(service, out var roles))
        {
            return 0;
        }

        _released.Clear();
        var released = 0;
        foreach (var role in roles)
        {
            var placements = _roles[role].Placements;
            var indexes = System.Buffers.ArrayPool<int>.Shared.Rent(Math.Max(placements.Count, 1));
            var count = placements.Count;
            placements.Keys.CopyTo(indexes, 0);
            for (var i = 0; i < count; i++)
            {
                released += Release(role, indexes[i]) ? 1 : 0;
            }

            System.Buffers.ArrayPool<int>.Shared.Return(indexes);
            _roles.Remove(role, out var emptied); // a deleted service leaves nothing behind in a state that lives on, but
            _released[role] = emptied!;           // the last one released, empty, until another is
        }

        return released;
    }

    internal int TenantId(string tenant)
    {
        if (!_tenants.TryGetValue(tenant, out var id))
        {
            id = _tenants.Count;
            _tenants[tenant] = id;
        }

        return id;
    }

    internal RoleState Role(RoleKey key)
    {
        if (!_roles.TryGetValue(key, out var state))
        {
            if (!_released.Remove(key, out state))
            {
                state = new RoleState(_faultDomains.Count);
            }

            _roles[key] = state;
            if (!_rolesByService.TryGetValue(key.Service, out var roles))
            {
                _rolesByService[key.Service] = roles = [];
            }

            roles.Add(key);
        }

        return state;
    }

    internal long FreeWholeCoresIn(int faultDomain) => _freeWholeCoresByFaultDomain[faultDomain];

    internal List<int> Bucket(int faultDomain, int freeWholeCores) => _buckets[faultDomain][freeWholeCores];

    /// <summary>Nodes of a fault domain where the tenant owns cores with idle threads; null when there are none.</summary>
    internal HashSet<int>? TenantIdleNodes(int tenant, int faultDomain) =>
        _tenantIdleNodes.TryGetValue(IdleKey(tenant, faultDomain), out var set) && set.Count > 0 ? set : null;

    /// <summary>Allocates on a chosen node and records the placement.</summary>
    internal Placement Commit(NodeState node, int tenant, PlacementRequest request, InstanceSlot slot)
    {
        var before = node.FreeWholeCores;
        var cpus = node.Allocate(tenant, request.Cpus, request.MemoryMiB);
        Reindex(node, tenant, before);
        AllocatedCpus += cpus.Length;
        var placement = new Placement(request.Role, slot.Index, slot.UpgradeDomain, node.Spec.Name, node.Spec.FaultDomain, cpus, request.MemoryMiB);
        Record(placement, node.FaultDomain);
        return placement;
    }

    private void Record(Placement placement, int faultDomain)
    {
        var role = Role(placement.Role);
        role.Placements[placement.Index] = placement;
        role.Count(faultDomain, placement.UpgradeDomain, +1);
    }

    private void Reindex(NodeState node, int tenant, int freeWholeBefore)
    {
        if (node.Condition == NodeCondition.Ready && node.FreeWholeCores != freeWholeBefore)
        {
            RemoveFromBucket(node);
            AddToBucket(node);
        }

        var key = IdleKey(tenant, node.FaultDomain);
        if (node.IdleFor(tenant) > 0)
        {
            if (!_tenantIdleNodes.TryGetValue(key, out var set))
            {
                set = [];
                _tenantIdleNodes[key] = set;
            }

            set.Add(node.Index);
        }
        else if (_tenantIdleNodes.TryGetValue(key, out var set))
        {
            set.Remove(node.Index);
        }
    }

    private void AddToBucket(NodeState node)
    {
        var bucket = _buckets[node.FaultDomain][node.FreeWholeCores];
        _bucketOf[node.Index] = node.FreeWholeCores;
        _positionInBucket[node.Index] = bucket.Count;
        bucket.Add(node.Index);
        _freeWholeCoresByFaultDomain[node.FaultDomain] += node.FreeWholeCores;
    }

    private void RemoveFromBucket(NodeState node)
    {
        var bucket = _buckets[node.FaultDomain][_bucketOf[node.Index]];
        var position = _positionInBucket[node.Index];
        var last = bucket[^1];
        bucket[position] = last;
        _positionInBucket[last] = position;
        bucket.RemoveAt(bucket.Count - 1);
        _freeWholeCoresByFaultDomain[node.FaultDomain] -= _bucketOf[node.Index];
        _bucketOf[node.Index] = -1;
    }

    private static long IdleKey(int tenant, int faultDomain) => ((long)tenant << 32) | (uint)faultDomain;
}
