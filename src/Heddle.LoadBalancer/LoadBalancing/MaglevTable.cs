namespace Heddle.LoadBalancer.LoadBalancing;

/// <summary>
/// Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of prime size in which every backend
/// owns an almost equal share of slots, filled from per-backend permutations so that removing one of N backends
/// moves only about 1/N of the slots. A flow's hash picks a slot; the slot names the backend.
/// </summary>
/// <remarks>
/// <para>
/// What two balancers serving one VIP can rely on (<c>SameBackendFromAnyBalancerTests</c> checks each):
/// </para>
/// <list type="bullet">
/// <item>Same backends, same choice. The table is a pure function of the list of ids (fixed seeds, no randomness,
/// no process state) and the flow hash of the 5-tuple with the VIP as destination, so balancers given the same
/// list pick the same backend for every flow. The table does depend on the list's order (the first backend wins a
/// contested slot), so <see cref="L4.TcpVipListener.Pool.Of"/> orders the backends by id before building it,
/// whatever order the controller sent them in.</item>
/// <item>Each balancer feeds the table the backends its own health checks pass (<c>BackendHealth</c>), so two
/// whose checks disagree about one backend build different tables. They differ on every flow of that backend, and
/// on a few others: Maglev's disruption is near-minimal, not minimal, so removing one of ten backends also moves
/// about 0.35% of the other backends' flows. The same holds for one balancer before and after a backend leaves.
/// Only new connections are placed by the table; an established one stays on its backend.</item>
/// </list>
/// </remarks>
internal sealed class MaglevTable
{
    /// <summary>Prime, and over 100 × the backends a listener has, so shares differ by well under 1%.</summary>
    public const int DefaultSize = 65_537;

    private readonly int[] _slots;

    public MaglevTable(IReadOnlyList<string> backends, int size = DefaultSize)
    {
        Backends = backends;
        _slots = new int[size];
        if (backends.Count == 0)
        {
            return;
        }

        // Backend i's permutation is (offset_i + j * skip_i) mod size for j = 0, 1, ...; each backend's place in it is
        // kept as the slot itself and moved on by one addition (skip < size), not computed again with a multiplication
        // and a 64-bit division per probe: the same table, several times faster to build (a balancer builds one for
        // every change of a listener's healthy backends).
        var positions = new int[backends.Count];
        var skips = new int[backends.Count];
        for (var i = 0; i < backends.Count; i++)
        {
            positions[i] = (int)(Hash(backends[i], 0xA5A5A5A5) % (ulong)size);
            skips[i] = (int)(Hash(backends[i], 0x5A5A5A5A) % (ulong)(size - 1)) + 1;
        }

        var slots = _slots;
        Array.Fill(slots, -1);
        var filled = 0;
        while (true)
        {
            for (var i = 0; i < backends.Count; i++)
            {
                var slot = positions[i];
                var skip = skips[i];
                while (slots[slot] >= 0)
                {
                    slot += skip;
                    if (slot >= size)
                    {
                        slot -= size;
                    }
                }

                slots[slot] = i;
                slot += skip;
                positions[i] = slot >= size ? slot - size : slot;
                if (++filled == size)
                {
                    return;
                }
            }
        }
    }

    public IReadOnlyList<string> Backends { get; }

    /// <summary>The backend index for a flow hash, or -1 when there are no backends.</summary>
    public int Lookup(ulong flowHash) => Backends.Count == 0 ? -1 : _slots[(int)(flowHash % (ulong)_slots.Length)];

    /// <summary>FNV-1a 64 of a backend's id, seeded: the two seeds give each backend its offset and skip.</summary>
    internal static ulong Hash(string value, ulong seed)
    {
        var hash = 14695981039346656037UL ^ seed;
        foreach (var c in value)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return hash ^ (hash >> 29);
    }
}
