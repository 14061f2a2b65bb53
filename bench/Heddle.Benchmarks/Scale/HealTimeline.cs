using Heddle.Contracts.Api;

namespace Heddle.Benchmarks.Scale;

/// <summary>
/// Where the heal's time went, read from the controller's own event log after the heal: when the lost nodes were
/// judged Down, when their instances were placed elsewhere, and when the last of those became Ready, each in seconds
/// after the nodes were dropped; and each moved instance's steps on its new node (median and slowest). The client's own
/// poll sees the end later still (its interval, and the listing's time).
/// </summary>
internal static class HealTimeline
{
    /// <summary>The id of the newest event now, so that only what follows is read afterwards.</summary>
    public static async Task<long> MarkAsync(HeddleApiClient api) => (await AllAfterAsync(api, 0)).Select(e => e.Id).DefaultIfEmpty(0).Max();

    /// <summary>
    /// Follows the event feed from after <paramref name="after"/>, as `heddle events -f` does, until every instance of
    /// <paramref name="moving"/> has been reported Ready on a node not in <paramref name="lost"/>; returns the time on
    /// <paramref name="clock"/> when it saw the last of them. A listing of every instance polled every 2 s saw the end
    /// up to 3 s late at 25,000 instances, each listing 15 MB.
    /// </summary>
    public static async Task<TimeSpan> FollowUntilMovedAsync(HeddleApiClient api, long after, IReadOnlySet<string> moving, IReadOnlySet<string> lost,
        System.Diagnostics.Stopwatch clock, CancellationToken ct)
    {
        const string ReadyOn = "Ready on node ";
        var pending = new HashSet<string>(moving, StringComparer.Ordinal);
        await foreach (var e in api.FollowEventsAsync(after, ct))
        {
            if (pending.Count > 0 && e.Kind == "InstanceState" && e.Message.StartsWith(ReadyOn, StringComparison.Ordinal) && pending.Contains(e.Subject)
                && !lost.Contains(e.Message[ReadyOn.Length..].Split(':')[0]))
            {
                pending.Remove(e.Subject);
            }

            if (pending.Count == 0)
            {
                return clock.Elapsed;
            }
        }

        throw new InvalidOperationException($"the controller's event feed ended with {pending.Count} moved instances not yet Ready");
    }

    /// <summary>Every event after the id, page by page (the API answers at most 1,000 at a time).</summary>
    private static async Task<List<EventRecord>> AllAfterAsync(HeddleApiClient api, long after)
    {
        var all = new List<EventRecord>();
        while (await api.ListEventsAsync(after) is { Count: > 0 } page)
        {
            all.AddRange(page);
            after = page[^1].Id;
        }

        return all;
    }

    /// <summary>
    /// Adds heal_down_first_s, heal_down_last_s, heal_placed_last_s and heal_ready_last_s to the figures; with
    /// <paramref name="logs"/>, writes every event of the heal there (heal-events.tsv: seconds after the drop, kind, subject, message).
    /// </summary>
    public static async Task TakeAsync(HeddleApiClient api, long after, DateTimeOffset dropped, Dictionary<string, object> figures, string? logs = null)
    {
        var events = await AllAfterAsync(api, after);
        double Since(DateTimeOffset at) => (at - dropped).TotalSeconds;
        if (logs is not null)
        {
            Directory.CreateDirectory(logs);
            await File.WriteAllLinesAsync(Path.Combine(logs, "heal-events.tsv"),
                events.Select(e => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Since(e.Time):0.000}\t{e.Kind}\t{e.Subject}\t{e.Message}")));
        }

        var down = events.Where(e => e.Kind == "NodeDown").Select(e => Since(e.Time)).ToList();
        var moved = events.Where(e => e.Kind == "InstanceMoved").ToList();
        var movedIds = moved.Select(e => e.Subject).ToHashSet(StringComparer.Ordinal);
        var ready = events.Where(e => e.Kind == "InstanceState" && movedIds.Contains(e.Subject) && e.Message.StartsWith("Ready", StringComparison.Ordinal)).Select(e => Since(e.Time)).ToList();
        if (down.Count > 0)
        {
            (figures["heal_down_first_s"], figures["heal_down_last_s"]) = (down.Min(), down.Max());
        }

        if (moved.Count > 0)
        {
            (figures["heal_placed_first_s"], figures["heal_placed_last_s"], figures["heal_moved"]) = (moved.Min(e => Since(e.Time)), moved.Max(e => Since(e.Time)), (double)moved.Count);
        }

        if (ready.Count > 0)
        {
            figures["heal_ready_last_s"] = ready.Max();
        }

        // Each moved instance's own steps after its placement, as its node's reports were written: placed → the first
        // report (the goal state sent and taken), that → Starting (the package fetched and unpacked), Starting → Ready.
        var placedAt = moved.GroupBy(e => e.Subject, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Max(e => e.Time), StringComparer.Ordinal);
        var reports = events.Where(e => e.Kind == "InstanceState" && placedAt.TryGetValue(e.Subject, out var at) && e.Time >= at)
            .GroupBy(e => e.Subject, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.OrderBy(e => e.Id).ToList(), StringComparer.Ordinal);
        DateTimeOffset? At(string id, string? state) => reports.TryGetValue(id, out var list)
            ? list.FirstOrDefault(e => state is null || e.Message.StartsWith(state + " ", StringComparison.Ordinal))?.Time : null;
        Steps("goal", placedAt.Select(p => (p.Value, At(p.Key, null))));
        Steps("fetch", placedAt.Select(p => (At(p.Key, null) ?? p.Value, At(p.Key, InstanceStates.Starting))));
        Steps("start", placedAt.Select(p => (At(p.Key, InstanceStates.Starting) ?? p.Value, At(p.Key, InstanceStates.Ready))));

        void Steps(string step, IEnumerable<(DateTimeOffset From, DateTimeOffset? To)> spans)
        {
            var seconds = spans.Where(s => s.To is not null).Select(s => (s.To!.Value - s.From).TotalSeconds).Order().ToList();
            if (seconds.Count > 0)
            {
                (figures[$"heal_{step}_p50_s"], figures[$"heal_{step}_max_s"]) = (seconds[seconds.Count / 2], seconds[^1]);
            }
        }
    }
}
