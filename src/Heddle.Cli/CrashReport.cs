using System.Globalization;

namespace Heddle.Cli;

/// <summary>
/// What a process says when it ends on an exception nothing caught: the exception with its stack, and the state of the
/// process that can explain it. The runtime alone prints only "Out of memory." for an OutOfMemoryException, and such an
/// exception at a few hundred MiB (a balancer under the scale benchmark ended so, twice, not reproduced since) is a limit
/// met elsewhere: address space, mappings (vm.max_map_count), threads, or the GC's own limit.
/// </summary>
internal static class CrashReport
{
    public static void Install(TextWriter error) =>
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            error.WriteLine($"heddle: unhandled exception, the process ends: {e.ExceptionObject}"); // first: the rest may fail to allocate
            error.WriteLine($"heddle: the process then: {State()}");
        };

    /// <summary>One line of figures; each read on its own, so that one unreadable does not hide the others.</summary>
    internal static string State()
    {
        var parts = new List<string>();
        Try(parts, () =>
        {
            var status = File.ReadLines("/proc/self/status").Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
                .ToDictionary(p => p[0], p => p[1].Trim(), StringComparer.Ordinal);
            return string.Join(", ", new[] { "VmRSS", "VmSize", "Threads" }.Where(status.ContainsKey).Select(k => $"{k} {status[k]}"));
        });
        Try(parts, () => $"mappings {File.ReadLines("/proc/self/maps").Count()} (vm.max_map_count {File.ReadAllText("/proc/sys/vm/max_map_count").Trim()})");
        Try(parts, () => $"open files {Directory.EnumerateFileSystemEntries("/proc/self/fd").Count()}");
        Try(parts, () =>
        {
            var gc = GC.GetGCMemoryInfo();
            return string.Create(CultureInfo.InvariantCulture,
                $"GC heap {gc.HeapSizeBytes >> 20} MiB, committed {gc.TotalCommittedBytes >> 20} MiB, limit {(gc.TotalAvailableMemoryBytes >> 20)} MiB, memory load {gc.MemoryLoadBytes >> 20} MiB, server {System.Runtime.GCSettings.IsServerGC}");
        });
        return string.Join("; ", parts);
    }

    private static void Try(List<string> parts, Func<string> read)
    {
        try
        {
            parts.Add(read());
        }
        catch (Exception)
        {
            // Best effort in a process already ending: a figure that cannot be read (or allocated) is left out.
        }
    }
}
