using System.Globalization;
using System.Runtime.InteropServices;

namespace Heddle.Agent.Drivers;

/// <summary>The few POSIX calls the process driver needs that .NET does not expose.</summary>
public static partial class Posix
{
    public const int SIGHUP = 1;
    public const int SIGTERM = 15;
    public const int SIGKILL = 9;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, int owner, int group);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string type, ulong flags, string? data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int umount2(string target, int flags);

    private const int MNT_DETACH = 2;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldPath, string newPath);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unshare(int flags);

    [LibraryImport("libc")]
    private static partial int gettid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_setaffinity(int pid, nint size, ulong[] mask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_getaffinity(int pid, nint size, [Out] ulong[] mask);

    private const int MaxCpus = 4096;

    public const ulong MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_REMOUNT = 32, MS_BIND = 4096, MS_REC = 16384, MS_PRIVATE = 1 << 18;

    /// <summary>mount(2) with flags; null when it worked, else the error.</summary>
    public static string? Mount(string? source, string target, string? type, ulong flags, string? data) =>
        mount(source!, target, type!, flags, data) == 0 ? null : $"mount {target}: error {Marshal.GetLastPInvokeError()}";

    /// <summary>Moves the calling thread (only it) into a new mount namespace, a copy of its current one.</summary>
    public static string? UnshareMountNamespace() => unshare(0x00020000) == 0 ? null : $"unshare(CLONE_NEWNS): error {Marshal.GetLastPInvokeError()}";

    public static int ThreadId() => gettid();

    /// <summary>mount(2) with flags; 0 when it worked, else errno.</summary>
    public static int MountErrno(string? source, string target, string? type, ulong flags, string? data) =>
        mount(source!, target, type!, flags, data) == 0 ? 0 : Marshal.GetLastPInvokeError();

    public const int EINVAL = 22;

    /// <summary>The CPUs this process may run on (its main thread's affinity, whatever the calling thread's), in order.</summary>
    public static IReadOnlyList<int> AllowedCpus()
    {
        var mask = new ulong[MaxCpus / 64];
        if (sched_getaffinity(Environment.ProcessId, mask.Length * sizeof(ulong), mask) != 0)
        {
            return [];
        }

        return [.. Enumerable.Range(0, MaxCpus).Where(cpu => (mask[cpu / 64] & (1UL << (cpu % 64))) != 0)];
    }

    /// <summary>Pins the calling thread (only it) to one CPU; false when that CPU may not be used.</summary>
    public static bool PinThread(int cpu)
    {
        var mask = new ulong[MaxCpus / 64];
        mask[cpu / 64] = 1UL << (cpu % 64);
        return sched_setaffinity(0, mask.Length * sizeof(ulong), mask) == 0;
    }

    /// <summary>link(2): a second name for the same file (same file system only).</summary>
    public static bool HardLink(string existing, string newPath) => link(existing, newPath) == 0;

    /// <summary>mount(2); returns null on success, else the error in words.</summary>
    public static string? Mount(string source, string target, string type, string? data) =>
        mount(source, target, type, 0, data) == 0 ? null : Marshal.GetLastPInvokeErrorMessage();

    /// <summary>Detaches every mount stacked at <paramref name="target"/> (at most 50), lazily as <see cref="Unmount"/> does.</summary>
    public static void UnmountAll(string target)
    {
        for (var i = 0; i < 50 && IsMountPoint(target); i++)
        {
            Unmount(target);
        }
    }

    /// <summary>Detaches a mount (lazily: it goes once nothing uses it); false when nothing was mounted there.</summary>
    public static bool Unmount(string target) => umount2(target, MNT_DETACH) == 0;

    /// <summary>The file system type of the topmost mount exactly at <paramref name="path"/> (nsfs, ext4, ...), or null when nothing is mounted there.</summary>
    public static string? MountTypeAt(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd('/');
        try
        {
            // Later lines are mounted later: the last at this point is the one on top.
            return File.ReadLines("/proc/thread-self/mountinfo").Select(l => (Fields: l.Split(' '), Tail: l.Split(" - ", 2)))
                .Where(m => m.Fields.Length > 4 && m.Tail.Length == 2 && Unescape(m.Fields[4]) == full)
                .Select(m => m.Tail[1].Split(' ')[0]).LastOrDefault();
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Whether something is mounted exactly at <paramref name="path"/> (from /proc/thread-self/mountinfo).</summary>
    public static bool IsMountPoint(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd('/');
        try
        {
            return File.ReadLines("/proc/thread-self/mountinfo").Any(l => l.Split(' ') is { Length: > 4 } f && Unescape(f[4]) == full);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Every mount point at or below <paramref name="root"/>, deepest first (the order to unmount them in).</summary>
    public static IReadOnlyList<string> MountPointsUnder(string root)
    {
        var full = Path.GetFullPath(root).TrimEnd('/');
        try
        {
            return [.. File.ReadLines("/proc/thread-self/mountinfo").Select(l => l.Split(' ')).Where(f => f.Length > 4).Select(f => Unescape(f[4]))
                .Where(p => p == full || p.StartsWith(full + "/", StringComparison.Ordinal)).Distinct().OrderByDescending(p => p.Length)];
        }
        catch (IOException)
        {
            return [];
        }
    }

    /// <summary>Whether any mount of this machine names <paramref name="path"/> (an overlay's lower layer, say) in its source, target or options.</summary>
    public static bool InUseByAMount(string path)
    {
        try
        {
            return File.ReadLines("/proc/mounts").Any(l => l.Contains(path, StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string Unescape(string mountPath) => mountPath.Replace("\\040", " ").Replace("\\011", "\t").Replace("\\012", "\n").Replace("\\134", "\\");

    /// <summary>Changes a file's owner without following a symbolic link.</summary>
    public static bool LChown(string path, int uid, int gid) => lchown(path, uid, gid) == 0;

    public static bool IsRoot => geteuid() == 0;

    public static bool Signal(int pid, int signal) => pid > 1 && kill(pid, signal) == 0;

    /// <summary>Signals a whole process group (the instance's: it leads its own session).</summary>
    public static bool SignalGroup(int processGroup, int signal) => processGroup > 1 && kill(-processGroup, signal) == 0;

    /// <summary>
    /// The process's start time in clock ticks since boot (field 22 of /proc/pid/stat): with the pid it names a
    /// process uniquely, so a recycled pid is never mistaken for an instance.
    /// </summary>
    public static long? StartTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var afterName = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (afterName[0] == "Z")
            {
                return null; // a zombie has exited
            }

            return long.Parse(afterName[19], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    public static bool IsAlive(int pid, long startTime) => pid > 0 && StartTime(pid) == startTime;

    /// <summary>The CPUs a process may run on, from /proc/pid/status (Cpus_allowed_list).</summary>
    public static string? AllowedCpus(int pid)
    {
        try
        {
            return File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal))?.Split(':')[1].Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }
}
