using System.Globalization;

namespace Heddle.Agent.Node;

public static class NodeMemoryInfo
{
    /// <summary>MemTotal from /proc/meminfo, in MiB.</summary>
    public static int TotalMiB()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
            {
                var kib = long.Parse(line["MemTotal:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                return (int)Math.Min(int.MaxValue, kib / 1024);
            }
        }

        return 1024;
    }
}
