using System.Diagnostics;

namespace Heddle.Cli.Commands;

/// <summary>
/// Where the processes `heddle up` starts (agents, DNS, the balancer) serve <c>/metrics</c>. Each is started with
/// <c>--metrics-port 0</c> and says at start, in its log, where the OS put the listener (<c>lb 1234: metrics at
/// http://127.0.0.1:40123/metrics</c>); once known, the port is kept in the process's arguments, so that one started
/// again answers where scrapers already look.
/// </summary>
internal static class UpMetrics
{
    public static readonly string[] Args = ["--metrics-port", "0"];

    private const string Marker = "metrics at ";

    /// <summary>The URL the process <paramref name="pid"/> (a <paramref name="kind"/>: agent, lb, dns) printed in <paramref name="log"/>; null until it has.</summary>
    public static string? Find(string log, string kind, int pid)
    {
        if (!File.Exists(log))
        {
            return null;
        }

        var prefix = $"{kind} {pid}:";
        using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        string? found = null;
        while (reader.ReadLine() is { } line)
        {
            var at = line.IndexOf(Marker, StringComparison.Ordinal);
            if (at >= 0 && line.StartsWith(prefix, StringComparison.Ordinal))
            {
                var url = line[(at + Marker.Length)..];
                var end = url.IndexOfAny([' ', ',']);
                found = end < 0 ? url : url[..end];
            }
        }

        return found;
    }

    /// <summary>Waits (up to 30 s) for the process to say where its metrics are; null if it has not by then (the cluster runs on without).</summary>
    public static async Task<string?> WaitAsync(string log, string kind, Process process, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30) && !process.HasExited)
        {
            if (Find(log, kind, process.Id) is { } url)
            {
                return url;
            }

            await Task.Delay(50, ct);
        }

        return null;
    }

    /// <summary>The arguments with <c>--metrics-port 0</c> replaced by the port of <paramref name="url"/>.</summary>
    public static string[] Pin(string[] args, string url)
    {
        var pinned = (string[])args.Clone();
        var at = Array.IndexOf(pinned, "--metrics-port");
        if (at >= 0 && at + 1 < pinned.Length && Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            pinned[at + 1] = uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return pinned;
    }
}
