using System.Globalization;
using Heddle.Contracts.Api;

namespace Heddle.Benchmarks.Deploy;

/// <summary>
/// Where the time between "deployment accepted" and "Ready seen by the client" goes, per instance, from the controller's
/// event stream: accepted → placed (the reconciler's pass), placed → first report (the goal state reaching the agent),
/// Downloading → Starting (the package fetched and unpacked), Starting → Ready (the process started and its first
/// probe passed), Ready → seen (the event reaching the client). Event times are the controller's, the last the client's,
/// on the same machine. A phase an agent passed too quickly to report is folded into the next (its row counts fewer).
/// </summary>
internal sealed class DeployPhases
{
    private static readonly string[] Names = ["accepted → placed", "placed → first report", "Downloading → Starting", "Starting → Ready", "Ready → seen by client"];

    private readonly List<double>[] _samples = [.. Names.Select(_ => new List<double>())];

    /// <summary>Adds one trial's phases from the events received (each with when the client received it).</summary>
    public void Add(IReadOnlyList<(EventRecord Event, DateTimeOffset Received)> events)
    {
        var accepted = events.FirstOrDefault(e => e.Event.Kind == "DeploymentAccepted").Event?.Time;
        if (accepted is null)
        {
            return;
        }

        foreach (var instance in events.Where(e => e.Event.Kind == "InstancePlaced").Select(e => e.Event.Subject).Distinct(StringComparer.Ordinal))
        {
            DateTimeOffset? At(string kind, string? state = null) => events.Where(e => e.Event.Kind == kind && e.Event.Subject == instance
                && (state is null || e.Event.Message.StartsWith(state + " ", StringComparison.Ordinal))).Select(e => (DateTimeOffset?)e.Event.Time).FirstOrDefault();
            var placed = At("InstancePlaced");
            var downloading = At("InstanceState", InstanceStates.Downloading);
            var starting = At("InstanceState", InstanceStates.Starting);
            var ready = At("InstanceState", InstanceStates.Ready);
            var seen = events.Where(e => e.Event.Kind == "InstanceState" && e.Event.Subject == instance && e.Event.Message.StartsWith("Ready ", StringComparison.Ordinal))
                .Select(e => (DateTimeOffset?)e.Received).FirstOrDefault();
            var first = new[] { downloading, starting, ready }.FirstOrDefault(t => t is not null);
            Sample(0, accepted, placed);
            Sample(1, placed, first);
            Sample(2, downloading, starting);
            Sample(3, starting, ready);
            Sample(4, ready, seen);
        }
    }

    private void Sample(int phase, DateTimeOffset? from, DateTimeOffset? to)
    {
        if (from is { } a && to is { } b)
        {
            _samples[phase].Add((b - a).TotalMilliseconds);
        }
    }

    /// <summary>The table: each phase's median and 90th percentile over every instance of every trial.</summary>
    public void Print(string label)
    {
        Console.WriteLine($"  phases, {label} (ms, over every instance of every trial):");
        Console.WriteLine($"    {"phase",-26} {"median",8} {"p90",8} {"samples",8}");
        for (var i = 0; i < Names.Length; i++)
        {
            var sorted = _samples[i].Order().ToList();
            if (sorted.Count == 0)
            {
                Console.WriteLine($"    {Names[i],-26} {"-",8} {"-",8} {0,8}");
                continue;
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    {Names[i],-26} {Statistics.Median(sorted),8:0} {sorted[Math.Min(sorted.Count - 1, (int)(sorted.Count * 0.9))],8:0} {sorted.Count,8}"));
        }
    }
}
