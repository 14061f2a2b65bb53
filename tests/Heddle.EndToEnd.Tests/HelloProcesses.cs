namespace Heddle.EndToEnd.Tests;

/// <summary>The hello sample's processes of one `heddle up` cluster, counted from /proc: command line names Hello, working directory under the cluster's home.</summary>
internal static class HelloProcesses
{
    public static List<int> Under(string home) =>
        [.. Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(p => int.TryParse(p, out _)).Select(int.Parse!)
            .Where(pid => Cmdline(pid).Contains("Hello", StringComparison.Ordinal) && WorksUnder(pid, home)).Order()];

    private static string Cmdline(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline");
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    private static bool WorksUnder(int pid, string directory)
    {
        try
        {
            return new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget?.StartsWith(directory + "/", StringComparison.Ordinal) == true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
