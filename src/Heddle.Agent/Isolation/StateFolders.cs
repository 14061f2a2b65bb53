namespace Heddle.Agent.Isolation;

/// <summary>
/// The modes of the agent's folders when instances run as uids of their own: the state folder and the folders down
/// to each instance can be passed through (0711) but not listed or read; the package cache and the logs are the
/// agent's alone (0700); an instance's app folder is its service's (0700).
/// </summary>
public static class StateFolders
{
    public const UnixFileMode PassThrough = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    /// <summary>0755: readable and passable by every user (a container's root, the layers of its file system).</summary>
    public const UnixFileMode Shared = PassThrough | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    public const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public static void Create(string path, UnixFileMode mode)
    {
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, mode);
    }

    /// <summary>
    /// The first folder above <paramref name="path"/> that a uid other than the agent's cannot pass through, or null
    /// when every one can (an instance running as its own uid must reach its folder below the agent's state).
    /// </summary>
    public static string? Blocking(string path)
    {
        for (var dir = Path.GetDirectoryName(Path.GetFullPath(path)); !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
        {
            // A folder still to be made is made passable (0755 under the usual umask, or by the agent itself).
            if (Directory.Exists(dir) && (File.GetUnixFileMode(dir) & UnixFileMode.OtherExecute) == 0)
            {
                return dir;
            }
        }

        return null;
    }

    /// <summary>Gives a tree to a uid (not following links: a link the instance planted never hands it a host file).</summary>
    public static void Chown(string path, Identity identity)
    {
        var root = new DirectoryInfo(path);
        Own(root.FullName, identity);
        foreach (var entry in root.EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            Own(entry.FullName, identity);
        }
    }

    private static void Own(string path, Identity identity)
    {
        if (!Drivers.Posix.LChown(path, identity.Uid, identity.Gid))
        {
            throw new IOException($"cannot give {path} to uid {identity.Uid}: error {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }
    }
}
