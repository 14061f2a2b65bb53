namespace Heddle.Agent.Logs;

/// <summary>
/// Keeps an instance's log files under a size cap by copy-and-truncate: the instance appends to one open file, so
/// the file is copied to .1 (older ones shifted, the oldest dropped) and truncated in place. A line written between
/// the copy and the truncate can be lost; the instance never has to reopen anything.
/// </summary>
public static class LogRotation
{
    public static void RotateIfLarge(string path, long maxBytes, int kept)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length <= maxBytes)
        {
            return;
        }

        for (var i = kept - 1; i >= 1; i--)
        {
            var older = $"{path}.{i}";
            if (File.Exists(older))
            {
                File.Move(older, $"{path}.{i + 1}", overwrite: true);
            }
        }

        File.Copy(path, $"{path}.1", overwrite: true);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        file.SetLength(0);
    }
}
