using Heddle.Contracts.Agents;

namespace Heddle.Controller.Agents;

/// <summary>
/// What an agent stream reported and the store has not taken yet: the newest report of each instance, so an instance's
/// Downloading, Starting and Ready that come while a write is on its way are written once, as Ready. Bounded: an agent
/// naming more instances than a node can run (a hostile one, by the million) has the reports of instances beyond
/// <see cref="Limit"/> dropped, while the instances already waiting keep taking their newer reports. Thread-safe: the
/// stream's reader offers, its recorder takes.
/// </summary>
internal sealed class UnsentReports(int limit)
{
    /// <summary>How many instances' reports may wait (a node runs far fewer instances).</summary>
    public int Limit { get; } = limit;

    private readonly Dictionary<string, InstanceReport> _waiting = new(StringComparer.Ordinal);

    /// <summary>The Hello's snapshot of what the node runs, as reports (bounded like any others).</summary>
    public UnsentReports(int limit, IEnumerable<InstanceReport> hello)
        : this(limit)
    {
        foreach (var report in hello)
        {
            Offer(report);
        }
    }

    public int Count
    {
        get
        {
            lock (_waiting)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>Keeps the report (replacing an older one of its instance); false when it was dropped for the bound.</summary>
    public bool Offer(InstanceReport report)
    {
        lock (_waiting)
        {
            if (_waiting.Count >= Limit && !_waiting.ContainsKey(report.InstanceId))
            {
                return false;
            }

            _waiting[report.InstanceId] = report;
            return true;
        }
    }

    /// <summary>What waits now, to be written; each stays until <see cref="Written"/> says so.</summary>
    public List<InstanceReport> Snapshot()
    {
        lock (_waiting)
        {
            return _waiting.Count == 0 ? [] : [.. _waiting.Values];
        }
    }

    /// <summary>The report was written: it stops waiting, unless a newer one of its instance came meanwhile (written next round).</summary>
    public void Written(InstanceReport report)
    {
        lock (_waiting)
        {
            if (_waiting.TryGetValue(report.InstanceId, out var now) && ReferenceEquals(now, report))
            {
                _waiting.Remove(report.InstanceId);
            }
        }
    }
}
