using System.Globalization;

namespace Heddle.Agent.Node;

/// <summary>
/// The CPUs a node offers the allocator (physical cores and their thread siblings) and, for each, the real CPU an
/// instance given it is pinned to. On a real node the two are the same; a node that claims more cores than the
/// machine has (`heddle up --cores-per-node`) maps its CPUs onto the real ones round-robin.
/// </summary>
public sealed class NodeTopology
{
    private readonly Dictionary<int, int> _realCpu;

    private NodeTopology(IReadOnlyList<IReadOnlyList<int>> cores, Dictionary<int, int> realCpu, bool claimed)
    {
        Cores = cores;
        _realCpu = realCpu;
        IsClaimed = claimed;
    }

    public IReadOnlyList<IReadOnlyList<int>> Cores { get; }

    /// <summary>True when the cores are claimed rather than the machine's own.</summary>
    public bool IsClaimed { get; }

    public int RealCpu(int cpu) => _realCpu.TryGetValue(cpu, out var real) ? real : cpu;

    public static NodeTopology Detect(int? claimCores, int claimThreadsPerCore, string sysfs = "/sys/devices/system/cpu")
    {
        var online = ParseList(ReadOr(Path.Combine(sysfs, "online"), $"0-{Environment.ProcessorCount - 1}"));
        if (claimCores is { } count)
        {
            var cores = new List<IReadOnlyList<int>>();
            var map = new Dictionary<int, int>();
            for (var c = 0; c < count; c++)
            {
                var threads = new int[claimThreadsPerCore];
                for (var t = 0; t < claimThreadsPerCore; t++)
                {
                    threads[t] = c + t * count;
                    map[threads[t]] = online[threads[t] % online.Count];
                }

                cores.Add(threads);
            }

            return new NodeTopology(cores, map, claimed: true);
        }

        // Group online CPUs by their sibling lists: each distinct list is one physical core.
        var byCore = new SortedDictionary<int, List<int>>();
        foreach (var cpu in online)
        {
            var siblings = ParseList(ReadOr(Path.Combine(sysfs, $"cpu{cpu}", "topology", "thread_siblings_list"), cpu.ToString(CultureInfo.InvariantCulture)));
            var key = siblings.Where(online.Contains).DefaultIfEmpty(cpu).Min();
            if (!byCore.TryGetValue(key, out var list))
            {
                byCore[key] = list = [];
            }

            list.Add(cpu);
        }

        return new NodeTopology([.. byCore.Values.Select(l => (IReadOnlyList<int>)[.. l.Order()])], online.ToDictionary(c => c, c => c), claimed: false);
    }

    /// <summary>Parses Linux CPU lists such as "0-3,8,10-11".</summary>
    public static List<int> ParseList(string text)
    {
        var result = new List<int>();
        foreach (var part in text.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var range = part.Split('-');
            var from = int.Parse(range[0], CultureInfo.InvariantCulture);
            var to = range.Length > 1 ? int.Parse(range[1], CultureInfo.InvariantCulture) : from;
            for (var cpu = from; cpu <= to; cpu++)
            {
                result.Add(cpu);
            }
        }

        return result;
    }

    private static string ReadOr(string path, string fallback) => File.Exists(path) ? File.ReadAllText(path) : fallback;
}
