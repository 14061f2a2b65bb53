namespace Heddle.Agent.Logs;

/// <summary>The end of an instance's log, for the report of why it failed.</summary>
internal static class LogTail
{
    /// <summary>The last non-empty line of a log file (at most 200 characters), read from its last 4 KiB; null when there is none.</summary>
    public static string? LastLine(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var length = (int)Math.Min(4096, file.Length);
            file.Seek(-length, SeekOrigin.End);
            var buffer = new byte[length];
            file.ReadExactly(buffer);
            var line = System.Text.Encoding.UTF8.GetString(buffer).Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.Length > 0);
            return line is null ? null : line.Length > 200 ? line[..200] + "…" : line;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
