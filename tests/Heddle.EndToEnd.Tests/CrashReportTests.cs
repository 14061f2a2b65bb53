using Heddle.Cli;

namespace Heddle.EndToEnd.Tests;

/// <summary>What a heddle process prints of itself when it ends on an exception nothing caught.</summary>
public sealed class CrashReportTests
{
    [Fact]
    public void TheState_NamesTheLimitsAnOutOfMemoryCanComeFrom()
    {
        var state = CrashReport.State();

        // Resident and virtual size, threads, mappings against the kernel's limit, open files, and the GC's own figures.
        foreach (var figure in new[] { "VmRSS ", "VmSize ", "Threads ", "mappings ", "vm.max_map_count ", "open files ", "GC heap ", "committed ", "limit " })
        {
            Assert.Contains(figure, state);
        }
    }
}
