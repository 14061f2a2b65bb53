using System.Globalization;

namespace Heddle.Benchmarks;

/// <summary>
/// The CPU time a process has used (user and system, all its threads), from /proc/PID/stat. Compared per unit of work,
/// it says which server does the work more cheaply, a figure a loaded machine disturbs far less than a rate does.
/// </summary>
internal static class ProcessCpu
{
    private const double TicksPerSecond = 100; // USER_HZ, 100 on every Linux architecture .NET runs on

    public static TimeSpan Of(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture); // utime, stime
        return TimeSpan.FromSeconds(ticks / TicksPerSecond);
    }

    /// <summary>Runs <paramref name="work"/> and says how much CPU <paramref name="pid"/> used meanwhile.</summary>
    public static (T Result, TimeSpan Cpu) During<T>(int pid, Func<T> work)
    {
        var before = Of(pid);
        var result = work();
        return (result, Of(pid) - before);
    }
}
