namespace Heddle.Agent.Instances;

/// <summary>
/// Removes the folders of instances that no longer exist once their logs are older than the log retention (their
/// app/ went when they stopped), then the role and service folders left empty.
/// </summary>
public static class InstanceFolders
{
    /// <returns>How many instance folders were removed.</returns>
    public static int Sweep(string instancesDirectory, IReadOnlySet<string> inUse, TimeSpan retention, DateTimeOffset now)
    {
        if (!Directory.Exists(instancesDirectory))
        {
            return 0;
        }

        var removed = 0;
        foreach (var service in Directory.EnumerateDirectories(instancesDirectory))
        {
            foreach (var role in Directory.EnumerateDirectories(service))
            {
                foreach (var instance in Directory.EnumerateDirectories(role).Where(d => !inUse.Contains(d)))
                {
                    var logs = Path.Combine(instance, "logs");
                    var last = Directory.Exists(logs)
                        ? Directory.EnumerateFiles(logs).Select(File.GetLastWriteTimeUtc).DefaultIfEmpty(Directory.GetLastWriteTimeUtc(instance)).Max()
                        : Directory.GetLastWriteTimeUtc(instance);
                    if (now - new DateTimeOffset(last, TimeSpan.Zero) >= retention)
                    {
                        // A disk its instance's cleanup could not unmount goes first: the delete must never walk into a mount.
                        Isolation.InstanceMounts.Remove(instance);
                        Isolation.InstanceDisk.Remove(instance);
                        TryDelete(instance, recursive: true);
                        removed++;
                    }
                }

                TryDelete(role, recursive: false);
            }

            TryDelete(service, recursive: false);
        }

        return removed;
    }

    private static void TryDelete(string directory, bool recursive)
    {
        try
        {
            if (recursive || !Directory.EnumerateFileSystemEntries(directory).Any())
            {
                Directory.Delete(directory, recursive);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
