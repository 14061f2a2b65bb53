namespace Heddle.Placement.Cluster;

/// <summary>
/// One node's free and used capacity, kept per physical core so the sibling rule can hold: every physical core
/// has at most one owner tenant, and only that tenant may use its idle threads.
/// </summary>
internal sealed class NodeState
{
    private const int NoOwner = -1;

    private readonly int[] _owner;
    private readonly int[] _usedMask;
    private readonly int[] _cpuCore;
    private readonly int[] _cpuThread;
    private Dictionary<int, int>? _idleByTenant;

    public NodeState(int index, NodeSpec spec, int faultDomain)
    {
        Index = index;
        Spec = spec;
        FaultDomain = faultDomain;
        Cores = [.. spec.Cores.Select(c => c.ToArray())];
        ThreadsPerWholeCore = Cores.Length == 0 ? 0 : Cores.Min(c => c.Length);
        _owner = new int[Cores.Length];
        Array.Fill(_owner, NoOwner);
        _usedMask = new int[Cores.Length];
        var maxCpu = Cores.Length == 0 ? -1 : Cores.Max(c => c.Length == 0 ? -1 : c.Max());
        _cpuCore = new int[maxCpu + 1];
        _cpuThread = new int[maxCpu + 1];
        Array.Fill(_cpuCore, -1);
        for (var c = 0; c < Cores.Length; c++)
        {
            if (Cores[c].Length > 30)
            {
                throw new ArgumentException($"node '{spec.Name}' core {c} has more than 30 threads");
            }

            for (var t = 0; t < Cores[c].Length; t++)
            {
                var cpu = Cores[c][t];
                if (cpu < 0 || _cpuCore[cpu] != -1)
                {
                    throw new ArgumentException($"node '{spec.Name}' lists CPU {cpu} twice or negative");
                }

                _cpuCore[cpu] = c;
                _cpuThread[cpu] = t;
            }
        }

        FreeWholeCores = Cores.Count(c => c.Length > 0);
        FreeCpus = Cores.Sum(c => c.Length);
        FreeMemoryMiB = spec.MemoryMiB;
    }

    public int Index { get; }

    public NodeSpec Spec { get; }

    public int FaultDomain { get; }

    public int[][] Cores { get; }

    /// <summary>The threads a whole free core is counted for (the fewest any core has).</summary>
    public int ThreadsPerWholeCore { get; }

    public NodeCondition Condition { get; set; }

    public int FreeWholeCores { get; private set; }

    public int FreeCpus { get; private set; }

    public int FreeMemoryMiB { get; private set; }

    /// <summary>Idle threads on cores the tenant already owns: usable by it and by nobody else.</summary>
    public int IdleFor(int tenant) => _idleByTenant is not null && _idleByTenant.TryGetValue(tenant, out var idle) ? idle : 0;

    /// <summary>Logical CPUs this tenant could get here without sharing a core with another tenant.</summary>
    public int UsableCpusFor(int tenant) => IdleFor(tenant) + FreeWholeCores * ThreadsPerWholeCore;

    /// <summary>Whole cores a request would take after using the tenant's idle threads: the "fragmentation cost".</summary>
    public int WholeCoresNeeded(int tenant, int cpus)
    {
        var rest = cpus - IdleFor(tenant);
        return rest <= 0 ? 0 : (rest + ThreadsPerWholeCore - 1) / ThreadsPerWholeCore;
    }

    /// <summary>
    /// Takes CPUs for a tenant: first the idle threads of cores it already owns, then whole free cores, lowest
    /// first. The caller has checked <see cref="UsableCpusFor"/> and memory.
    /// </summary>
    public int[] Allocate(int tenant, int cpus, int memoryMiB)
    {
        var result = new int[cpus];
        var taken = 0;
        if (IdleFor(tenant) > 0)
        {
            for (var c = 0; c < Cores.Length && taken < cpus; c++)
            {
                if (_owner[c] == tenant)
                {
                    taken = TakeThreads(c, tenant, result, taken, cpus);
                }
            }
        }

        for (var c = 0; c < Cores.Length && taken < cpus; c++)
        {
            if (_owner[c] == NoOwner && Cores[c].Length > 0)
            {
                taken = TakeThreads(c, tenant, result, taken, cpus);
            }
        }

        if (taken < cpus)
        {
            throw new InvalidOperationException($"node '{Spec.Name}' had fewer usable CPUs than checked; this is a bug");
        }

        FreeMemoryMiB -= memoryMiB;
        return result;
    }

    /// <summary>Takes exactly these CPUs (an existing placement read back from a snapshot); false if any is not free to this tenant.</summary>
    public bool TryClaim(int tenant, IReadOnlyList<int> cpus, int memoryMiB)
    {
        // Indexed loops and a pairwise duplicate check, not foreach and Distinct(): each snapshot claims every placement
        // of the cluster again, and their enumerators and sets were a twentieth of what the deploying controller allocated.
        for (var i = 0; i < cpus.Count; i++)
        {
            var cpu = cpus[i];
            if (cpu < 0 || cpu >= _cpuCore.Length || _cpuCore[cpu] < 0)
            {
                return false;
            }

            var core = _cpuCore[cpu];
            if ((_usedMask[core] & (1 << _cpuThread[cpu])) != 0 || _owner[core] != NoOwner && _owner[core] != tenant)
            {
                return false;
            }

            for (var j = 0; j < i; j++)
            {
                if (cpus[j] == cpu)
                {
                    return false;
                }
            }
        }

        if (memoryMiB > FreeMemoryMiB)
        {
            return false;
        }

        for (var i = 0; i < cpus.Count; i++)
        {
            Take(_cpuCore[cpus[i]], _cpuThread[cpus[i]], tenant);
        }

        FreeMemoryMiB -= memoryMiB;
        return true;
    }

    public void Release(int tenant, IReadOnlyList<int> cpus, int memoryMiB)
    {
        for (var i = 0; i < cpus.Count; i++) // by index: an interface's enumerator is an object per call
        {
            var cpu = cpus[i];
            var core = _cpuCore[cpu];
            var bit = 1 << _cpuThread[cpu];
            if (_owner[core] != tenant || (_usedMask[core] & bit) == 0)
            {
                throw new InvalidOperationException($"node '{Spec.Name}' CPU {cpu} is not held by this tenant; this is a bug");
            }

            _usedMask[core] &= ~bit;
            FreeCpus++;
            if (_usedMask[core] == 0)
            {
                _owner[core] = NoOwner;
                AddIdle(tenant, -(Cores[core].Length - 1));
                FreeWholeCores++;
            }
            else
            {
                AddIdle(tenant, 1);
            }
        }

        FreeMemoryMiB += memoryMiB;
    }

    private int TakeThreads(int core, int tenant, int[] result, int taken, int cpus)
    {
        for (var t = 0; t < Cores[core].Length && taken < cpus; t++)
        {
            if ((_usedMask[core] & (1 << t)) == 0)
            {
                Take(core, t, tenant);
                result[taken++] = Cores[core][t];
            }
        }

        return taken;
    }

    private void Take(int core, int thread, int tenant)
    {
        if (_owner[core] == NoOwner)
        {
            _owner[core] = tenant;
            FreeWholeCores--;
            AddIdle(tenant, Cores[core].Length);
        }

        _usedMask[core] |= 1 << thread;
        FreeCpus--;
        AddIdle(tenant, -1);
    }

    private void AddIdle(int tenant, int delta)
    {
        _idleByTenant ??= [];
        var idle = _idleByTenant.GetValueOrDefault(tenant) + delta;
        if (idle == 0)
        {
            _idleByTenant.Remove(tenant);
        }
        else
        {
            _idleByTenant[tenant] = idle;
        }
    }
}
