using Heddle.Agent.Drivers;

namespace Heddle.Agent.Isolation;

/// <summary>
/// A process instance's own mount namespace, made once with its disk and kept (bound at <c>mnt.ns</c> in its folder)
/// for every run of it, its startup tasks included: <c>/tmp</c> is its disk's <c>tmp/</c>, <c>/dev/shm</c> a tmpfs
/// of its own (<see cref="Drivers.InstanceLaunch.SharedMemoryMiB"/>), <c>/proc</c> shows no process of another uid
/// (hidepid=invisible), and nothing mounted in it reaches the host (private). Made by the agent on a thread of its
/// own (unshare(CLONE_NEWNS) moves only the calling thread) with mount(2), which costs no process per mount; the
/// launch enters it with nsenter.
/// </summary>
public static class InstanceMounts
{
    public static string File(string instanceDirectory) => Path.Combine(instanceDirectory, "mnt.ns");

    /// <summary>
    /// The instance's /tmp on its disk: 1777 as /tmp is, under a folder only root may pass (<c>disk/.private/</c>), so no
    /// other uid reaches it by its path on the host; the instance reaches it only through its bind mount at /tmp.
    /// </summary>
    public static string Tmp(string instanceDirectory) => Path.Combine(InstanceDisk.MountPoint(instanceDirectory), ".private", "tmp");

    /// <summary>Makes the namespace unless it is there (an earlier run, an earlier agent); its disk must be mounted first.</summary>
    public static void Ensure(string instanceDirectory, int sharedMemoryMiB)
    {
        var file = File(instanceDirectory);
        if (Posix.MountTypeAt(file) == "nsfs")
        {
            return;
        }

        Posix.UnmountAll(file); // half made: an agent that died between the two mounts below
        var tmp = Tmp(instanceDirectory);
        System.IO.File.WriteAllBytes(file, []);
        // A namespace may be bound only onto a mount that does not propagate: systemd makes / shared, and binding onto a
        // file there fails with EINVAL (as `ip netns` makes /run/netns private, and unshare(1) asks of --mount=FILE).
        // The file becomes a private mount of its own first, and the namespace is bound on top of it.
        if ((Posix.Mount(file, file, null, Posix.MS_BIND, null) ?? Posix.Mount(null, file, null, Posix.MS_PRIVATE, null)) is { } unbindable)
        {
            Posix.UnmountAll(file);
            throw new IOException($"making the instance's mount namespace failed: {unbindable}");
        }

        // mount(2) binds a mount namespace only when the namespace is newer than the binder's own (its loop guard
        // compares their ids); Linux 6.18 hands namespace ids out in per-CPU batches, so one made on another CPU than
        // the agent's own namespace may have a lower id, and the bind then fails with EINVAL however often it is tried. The
        // agent in the host's first namespace never meets it; one in a namespace of its own (a container, a test) does.
        // A namespace refused so is let go and made again on the next CPU: the CPU that made the agent's namespace hands
        // out higher ids, so one round over the allowed CPUs succeeds.
        string? failed = null;
        foreach (var cpu in new int?[] { null }.Concat(Posix.AllowedCpus().Select(c => (int?)c)))
        {
            var (error, tryAnotherCpu) = MakeAndBind(file, tmp, sharedMemoryMiB, cpu);
            if (error is null)
            {
                return;
            }

            failed = error;
            if (!tryAnotherCpu)
            {
                break;
            }
        }

        Posix.UnmountAll(file);
        throw new IOException($"making the instance's mount namespace failed: {failed}");
    }

    /// <summary>Makes the namespace on a thread of its own (pinned to <paramref name="cpu"/> if given) and binds it to <paramref name="file"/>.</summary>
    private static (string? Error, bool TryAnotherCpu) MakeAndBind(string file, string tmp, int sharedMemoryMiB, int? cpu)
    {
        string? error = null;
        var tid = 0;
        using var made = new ManualResetEventSlim();
        using var bound = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            try
            {
                tid = Posix.ThreadId();
                if (cpu is { } pinned && !Posix.PinThread(pinned))
                {
                    error = $"cannot run on CPU {pinned}";
                    return;
                }

                error = Posix.UnshareMountNamespace()
                    ?? Posix.Mount(null, "/", null, Posix.MS_REC | Posix.MS_PRIVATE, null)
                    ?? Posix.Mount("proc", "/proc", "proc", Posix.MS_NOSUID | Posix.MS_NODEV | Posix.MS_NOEXEC, "hidepid=invisible")
                    ?? Posix.Mount(tmp, "/tmp", null, Posix.MS_BIND, null)
                    ?? Posix.Mount(null, "/tmp", null, Posix.MS_REMOUNT | Posix.MS_BIND | Posix.MS_NOSUID | Posix.MS_NODEV, null)
                    ?? Posix.Mount("shm", "/dev/shm", "tmpfs", Posix.MS_NOSUID | Posix.MS_NODEV, $"size={sharedMemoryMiB}m,mode=1777");
            }
            finally
            {
                made.Set();
                // The namespace lives while this thread is in it: it waits until the namespace is bound to its file.
                bound.Wait(TimeSpan.FromSeconds(30));
            }
        })
        { IsBackground = true, Name = "heddle mount namespace" };
        thread.Start();
        made.Wait();
        try
        {
            if (error is not null)
            {
                return (error, cpu is not null && error.StartsWith("cannot run on CPU", StringComparison.Ordinal));
            }

            var errno = Posix.MountErrno($"/proc/self/task/{tid}/ns/mnt", file, null, Posix.MS_BIND, null);
            return errno == 0 ? (null, false) : ($"binding it to {file}: error {errno}", errno == Posix.EINVAL);
        }
        finally
        {
            bound.Set();
            thread.Join();
        }
    }

    /// <summary>Lets the namespace go (once no process is in it).</summary>
    public static void Remove(string instanceDirectory)
    {
        var file = File(instanceDirectory);
        Posix.UnmountAll(file);

        System.IO.File.Delete(file);
    }
}
