using System.Diagnostics;
using Heddle.Agent.Drivers;

namespace Heddle.Agent.Isolation;

/// <summary>
/// An instance's own disk (the seed's differencing disk, Cloud Services' LocalStorage): a sparse file-backed ext4 image
/// of the role's <c>size.diskMiB</c> (<c>disk.img</c> in the instance folder), loop-mounted at <c>disk/</c>, nosuid and
/// nodev. Everything the instance may write lives on it — the process driver's app/ and /tmp, the container's upper
/// layer — so writing past its size fails with ENOSPC for that instance alone. It has no journal: it is scratch space,
/// kept across restarts of the instance and of the agent (the mount outlives the agent), removed with the instance.
/// Only as root; elsewhere <c>disk/</c> is a plain folder and the instance is not confined to a size.
/// </summary>
public static class InstanceDisk
{
    private const string MkfsExt4 = "/usr/sbin/mkfs.ext4";
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    public static string MountPoint(string instanceDirectory) => Path.Combine(instanceDirectory, "disk");

    public static string ImageFile(string instanceDirectory) => Path.Combine(instanceDirectory, "disk.img");

    /// <summary>Why disks cannot be made on this host, or null when they can (root, mkfs.ext4 and mount present).</summary>
    public static string? Unavailable() =>
        !Posix.IsRoot ? "the agent is not root"
        : !File.Exists(MkfsExt4) ? $"{MkfsExt4} is missing (apt-get install e2fsprogs)"
        : !File.Exists(HostPrograms.Mount) ? $"{HostPrograms.Mount} is missing (apt-get install mount)"
        : null;

    /// <summary>
    /// Makes (once) and mounts the disk, idempotently: mounted already (an earlier run, an earlier agent) is kept as it
    /// is; an image with no mount (the host restarted) is mounted again with what it holds.
    /// </summary>
    public static void Ensure(string instanceDirectory, int sizeMiB)
    {
        var mountPoint = MountPoint(instanceDirectory);
        Directory.CreateDirectory(mountPoint);
        if (Posix.IsMountPoint(mountPoint))
        {
            return;
        }

        var image = ImageFile(instanceDirectory);
        if (!File.Exists(image))
        {
            var partial = image + ".partial";
            File.Delete(partial);
            using (var file = new FileStream(partial, FileMode.CreateNew, FileAccess.Write))
            {
                file.SetLength((long)sizeMiB << 20); // sparse: blocks are taken as the instance writes
            }

            File.SetUnixFileMode(partial, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            // No journal (scratch space, one fsck after a host crash at worst) and no reserved blocks: mkfs takes ~10 ms.
            Run(MkfsExt4, "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=1,root_owner=0:0", partial);
            File.Move(partial, image);
        }

        Run(HostPrograms.Mount, "-o", "loop,nosuid,nodev", "-t", "ext4", image, mountPoint);
        var lostFound = Path.Combine(mountPoint, "lost+found");
        if (Directory.Exists(lostFound))
        {
            Directory.Delete(lostFound);
        }

        File.SetUnixFileMode(mountPoint, StateFolders.PassThrough);
    }

    /// <summary>Unmounts the disk (its loop device goes with the last reference) and deletes its image.</summary>
    public static void Remove(string instanceDirectory)
    {
        var mountPoint = MountPoint(instanceDirectory);
        Posix.UnmountAll(mountPoint);

        File.Delete(ImageFile(instanceDirectory));
        File.Delete(ImageFile(instanceDirectory) + ".partial");
    }

    /// <summary>
    /// Unmounts and deletes every instance disk (and lets every instance's mount namespace go) below an agent's state folder (a cluster's teardown, once its instances
    /// are stopped; an instance the journal never recorded included); returns how many there were.
    /// </summary>
    public static int RemoveAllUnder(string stateDirectory)
    {
        var mounts = Posix.MountPointsUnder(stateDirectory);
        foreach (var namespaceFile in mounts.Where(p => Path.GetFileName(p) == "mnt.ns"))
        {
            InstanceMounts.Remove(Path.GetDirectoryName(namespaceFile)!);
        }

        var disks = mounts.Where(p => Path.GetFileName(p) == "disk" && File.Exists(ImageFile(Path.GetDirectoryName(p)!))).ToList();
        foreach (var disk in disks)
        {
            Remove(Path.GetDirectoryName(disk)!);
        }

        return disks.Count;
    }

    /// <summary>Bytes used and the disk's size; null when the instance has no disk of its own mounted.</summary>
    public static (long Used, long Size)? Usage(string instanceDirectory)
    {
        var mountPoint = MountPoint(instanceDirectory);
        if (!Posix.IsMountPoint(mountPoint))
        {
            return null;
        }

        try
        {
            var drive = new DriveInfo(mountPoint);
            return (drive.TotalSize - drive.TotalFreeSpace, drive.TotalSize);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private static void Run(string program, params string[] args)
    {
        var start = HostPrograms.StartInfo(program, args);
        start.RedirectStandardError = true;
        start.RedirectStandardOutput = true;
        using var process = Process.Start(start) ?? throw new IOException($"{program} did not start");
        var error = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(CallTimeout))
        {
            process.Kill();
            throw new IOException($"{Path.GetFileName(program)} did not finish in {CallTimeout.TotalSeconds:0} s");
        }

        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new IOException($"making the instance's disk failed: {Path.GetFileName(program)} {string.Join(' ', args)} exited with code {process.ExitCode}: {error.Result.Trim()}");
        }
    }
}
