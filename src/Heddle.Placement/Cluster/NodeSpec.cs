using Heddle.Model.Definition;

namespace Heddle.Placement.Cluster;

public enum NodeCondition
{
    Ready,

    /// <summary>Not heard from: receives nothing.</summary>
    Down,

    /// <summary>Being emptied on purpose: keeps what it runs, receives nothing new.</summary>
    Draining,
}

/// <summary>
/// A machine as the allocator sees it. <see cref="Cores"/> lists, for each physical core, the logical CPU ids of
/// its hardware threads (its hyperthread siblings), as Linux numbers them.
/// </summary>
public sealed record NodeSpec
{
    public required string Name { get; init; }

    public required string FaultDomain { get; init; }

    public required int MemoryMiB { get; init; }

    public required IReadOnlyList<IReadOnlyList<int>> Cores { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public NodeCondition Condition { get; init; } = NodeCondition.Ready;

    /// <summary>The instance drivers the node's agent can run (process; container where runc, root and overlay work).</summary>
    public IReadOnlySet<string> Drivers { get; init; } = ProcessOnly;

    public static readonly IReadOnlySet<string> ProcessOnly = new HashSet<string>(StringComparer.Ordinal) { DriverNames.Process };

    public int LogicalCpuCount => Cores.Sum(c => c.Count);

    /// <summary>
    /// The usual Linux numbering for <paramref name="cores"/> physical cores of <paramref name="threadsPerCore"/>
    /// threads: core c holds CPUs c, c + cores, c + 2·cores...
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<int>> UniformTopology(int cores, int threadsPerCore)
    {
        var result = new IReadOnlyList<int>[cores];
        for (var c = 0; c < cores; c++)
        {
            var threads = new int[threadsPerCore];
            for (var t = 0; t < threadsPerCore; t++)
            {
                threads[t] = c + t * cores;
            }

            result[c] = threads;
        }

        return result;
    }
}
