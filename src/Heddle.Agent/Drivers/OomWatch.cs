using System.Collections.Concurrent;

namespace Heddle.Agent.Drivers;

/// <summary>
/// Tells whether an instance's run ended because the kernel killed it for memory: the OOM-kill count of its memory
/// cgroup when the run started, against the count when it ended. Both drivers use it.
/// </summary>
internal sealed class OomWatch(Cgroups cgroups)
{
    private readonly ConcurrentDictionary<string, long> _atStart = new(StringComparer.Ordinal);

    /// <summary>Called as a run starts.</summary>
    public void Started(string instance) => _atStart[instance] = cgroups.OomKills(instance);

    /// <summary>"out of memory (limit N MiB)" when the kernel killed a task of the instance since its run started; else null.</summary>
    public string? WhyEnded(string instance, int memoryMiB)
    {
        var now = cgroups.OomKills(instance);
        var before = _atStart.GetValueOrDefault(instance, now);
        _atStart[instance] = now;
        return now > before ? $"out of memory (limit {memoryMiB} MiB)" : null;
    }

    public void Forget(string instance) => _atStart.TryRemove(instance, out _);
}
