using System.Diagnostics;
using Heddle.Contracts.Api;

namespace Heddle.Cli.Commands;

/// <summary>
/// Follows an upgrade walk until it ends: each upgrade domain with its instances and states, the domain in progress
/// and the gate's countdown. On a terminal the picture is redrawn in place; otherwise a line is printed per change.
/// Completed is exit 0; RolledBack or Paused (a failure, or waiting for `heddle upgrade resume`) is 1.
/// </summary>
internal static class UpgradeWatcher
{
    /// <summary>How long following rides out a controller that cannot be reached (one being restarted).</summary>
    internal static readonly TimeSpan UnreachableLimit = TimeSpan.FromSeconds(30);

    public static async Task<(int Exit, UpgradeStatus? Status)> FollowAsync(CliConsole console, HeddleApiClient api, string service, long? revision, TimeSpan timeout,
        bool quiet, bool stopWhenWaiting, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var live = !quiet && !Console.IsOutputRedirected && ReferenceEquals(console.Out, Console.Out);
        var drawn = 0;
        var last = string.Empty;
        UpgradeStatus? status = null;
        var unreachableSince = (TimeSpan?)null;
        while (clock.Elapsed < timeout)
        {
            try
            {
                status = await api.GetUpgradeAsync(service, ct);
                unreachableSince = null;
            }
            catch (HeddleApiException e) when (e.Status is null && clock.Elapsed - (unreachableSince ??= clock.Elapsed) < UnreachableLimit)
            {
                // The controller is restarting (its walk is stored and carries on): keep following for a while.
                await Task.Delay(250, ct);
                continue;
            }

            if (revision is not null && status.Revision != revision)
            {
                await Task.Delay(100, ct); // the walk for this revision has not been read back yet
                continue;
            }

            var picture = Render(status);
            if (!quiet && live)
            {
                // Each line cut to the terminal's width, so that wrapping never throws the count of lines to redraw.
                var width = Math.Max(20, SafeWidth() - 1);
                var lines = picture.Split('\n').Select(l => l.Length > width ? l[..(width - 1)] + "…" : l).ToArray();
                console.Out.Write(drawn > 0 ? $"\u001b[{drawn}F\u001b[J" : string.Empty);
                console.Out.Write($"{string.Join('\n', lines)}\n");
                drawn = lines.Length;
            }
            else if (!quiet && Key(status) != last)
            {
                console.Out.WriteLine($"  {clock.Elapsed.TotalSeconds,5:0.0}s  {OneLine(status)}");
            }

            last = Key(status);
            var waiting = status.State is UpgradeStates.WaitingForResume && stopWhenWaiting;
            if (status.IsFinished || status.State == UpgradeStates.Paused || waiting)
            {
                return (End(console, status, quiet), status);
            }

            await Task.Delay(live ? 200 : 100, ct);
        }

        if (!quiet)
        {
            console.Error.WriteLine($"heddle: the upgrade of {service}{(status is null ? string.Empty : $" to revision {status.Revision}")} had not ended after {Durations.Format(timeout)}; it goes on: see 'heddle upgrade status {service}'");
        }

        return (ExitCodes.Invalid, status);
    }

    private static int End(CliConsole console, UpgradeStatus status, bool quiet)
    {
        var took = status.Finished is { } end ? $" in {(end - status.Started).TotalSeconds:0.0}s" : string.Empty;
        switch (status.State)
        {
            case UpgradeStates.Completed:
                if (!quiet)
                {
                    console.Out.WriteLine($"{status.Service}: upgrade to revision {status.Revision} completed{took}");
                }

                return ExitCodes.Ok;
            case UpgradeStates.RolledBack:
                if (!quiet)
                {
                    console.Error.WriteLine($"heddle: upgrade to revision {status.Revision} rolled back{took}: {status.Reason}");
                }

                return ExitCodes.Invalid;
            case UpgradeStates.WaitingForResume:
                if (!quiet)
                {
                    console.Error.WriteLine($"heddle: upgrade to revision {status.Revision} is waiting after upgrade domain {PreviousDomain(status)} (manual mode); run 'heddle upgrade resume {status.Service}'");
                }

                return ExitCodes.Invalid;
            default:
                if (!quiet)
                {
                    var why = status.Reason is null ? "by a user" : $": {status.Reason}";
                    console.Error.WriteLine($"heddle: upgrade to revision {status.Revision} paused {why}; run 'heddle upgrade resume {status.Service}' or 'heddle upgrade rollback {status.Service}'");
                }

                return ExitCodes.Invalid;
        }
    }

    private static int SafeWidth()
    {
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : 120;
        }
        catch (IOException)
        {
            return 120;
        }
    }

    private static string PreviousDomain(UpgradeStatus status) =>
        status.Domains.LastOrDefault(d => d.State == "Done")?.Domain.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-";

    /// <summary>The whole picture, for a terminal.</summary>
    public static string Render(UpgradeStatus status)
    {
        var lines = new List<string> { Headline(status) };
        foreach (var domain in status.Domains)
        {
            var marker = domain.Domain == status.CurrentDomain && !status.IsFinished ? "▶" : " ";
            lines.Add($" {marker} UD {domain.Domain,-2} {domain.State,-9} {string.Join("  ", domain.Instances.Select(Instance))}");
        }

        return string.Join('\n', lines);
    }

    private static string Headline(UpgradeStatus status)
    {
        var direction = status.State is UpgradeStates.RollingBack or UpgradeStates.RolledBack
            ? $"rollback of revision {status.Revision} to revision {status.Previous}"
            : $"upgrade to revision {status.Revision} (from {status.Previous})";
        var where = status.CurrentDomain is { } d && !status.IsFinished ? $", upgrade domain {d} {status.Phase}" : string.Empty;
        var gate = status.GateRemainingSeconds is { } g ? $", health gate opens in {g:0.0}s" : string.Empty;
        return $"{status.Service}: {direction}: {status.State}{where}{gate}";
    }

    private static string Instance(UpgradeInstanceStatus i)
    {
        var revision = i.RunningRevision == i.Revision || i.RunningRevision == 0 ? $"r{i.Revision}" : $"r{i.RunningRevision}→r{i.Revision}";
        return $"{i.Id} {(i.Draining ? "Draining" : i.State)} {revision}";
    }

    /// <summary>One line per change, for logs and pipes.</summary>
    public static string OneLine(UpgradeStatus status) =>
        $"{Headline(status)} | {string.Join(" | ", status.Domains.Select(d => $"UD {d.Domain} {d.State}: {string.Join(", ", d.Instances.Select(Instance))}"))}";

    /// <summary>What counts as a change for line mode: everything but the countdown.</summary>
    private static string Key(UpgradeStatus status) => OneLine(status with { GateRemainingSeconds = null });
}
