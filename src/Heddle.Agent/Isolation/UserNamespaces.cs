using System.Diagnostics;
using System.Globalization;
using Heddle.Agent.Drivers;

namespace Heddle.Agent.Isolation;

/// <summary>
/// One user namespace per service uid on a host, in which that service's process instances run: it maps uid 0 (the
/// launch, until setpriv) and the service's uid to themselves, and allows no user namespace below it
/// (max_user_namespaces 0), so an instance's `unshare -U` or clone(CLONE_NEWUSER) fails with ENOSPC. Made once, by a
/// holder process whose maps the agent writes from the host's namespace, kept by a bind mount at
/// <c>/run/heddle/userns/&lt;uid&gt;</c> (agents of one host share it: it says nothing but the uid) and entered by the
/// launch with nsenter. Let go once no process runs as the uid.
/// </summary>
public static class UserNamespaces
{
    public const string Folder = "/run/heddle/userns";
    private static readonly Lock Gate = new();

    public static string File(int uid) => Path.Combine(Folder, uid.ToString(CultureInfo.InvariantCulture));

    public static string Ensure(Identity identity)
    {
        var file = File(identity.Uid);
        lock (Gate)
        {
            if (Posix.IsMountPoint(file))
            {
                return file;
            }

            using var hostWide = LockHostWide();
            if (Posix.IsMountPoint(file))
            {
                return file; // another agent of this host made it meanwhile
            }

            Make(identity, file);
            return file;
        }
    }

    /// <summary>
    /// Lets go of the namespaces of <paramref name="uids"/> (an agent's teardown: the uids its cluster claimed and no process
    /// runs as any more; another cluster's are never touched).
    /// </summary>
    public static void Release(IEnumerable<int> uids)
    {
        lock (Gate)
        {
            using var hostWide = LockHostWide();
            foreach (var uid in uids)
            {
                Release(uid);
            }
        }
    }

    public static void Release(int uid)
    {
        var file = File(uid);
        Posix.UnmountAll(file);
        System.IO.File.Delete(file);
    }

    private static void Make(Identity identity, string file)
    {
        // The holder: a shell in a new user namespace that waits on its stdin; nothing of it runs once the namespace is bound.
        var start = HostPrograms.StartInfo(HostPrograms.Unshare, "--user", "--", HostPrograms.Shell, "-c", "read _");
        start.RedirectStandardInput = true;

        using var holder = Process.Start(start) ?? throw new IOException("unshare did not start");
        try
        {
            var ours = NamespaceOf("self");
            var waited = Stopwatch.StartNew();
            while (NamespaceOf(holder.Id.ToString(CultureInfo.InvariantCulture)) == ours)
            {
                if (holder.HasExited || waited.Elapsed > TimeSpan.FromSeconds(10))
                {
                    throw new IOException($"unshare --user did not make a user namespace (exit {(holder.HasExited ? holder.ExitCode : -1)})");
                }

                Thread.Sleep(1);
            }

            // Each map in one write, as the kernel requires; written from the host's namespace by root, so setgroups stays allowed.
            System.IO.File.WriteAllText($"/proc/{holder.Id}/uid_map", $"0 0 1\n{identity.Uid} {identity.Uid} 1\n");
            System.IO.File.WriteAllText($"/proc/{holder.Id}/gid_map", $"0 0 1\n{identity.Gid} {identity.Gid} 1\n");
            ForbidNested(holder.Id);
            Directory.CreateDirectory(Folder);
            System.IO.File.WriteAllBytes(file, []);
            if (Posix.Mount($"/proc/{holder.Id}/ns/user", file, null, Posix.MS_BIND, null) is { } error)
            {
                throw new IOException($"keeping the user namespace of uid {identity.Uid} failed: {error}");
            }
        }
        finally
        {
            holder.StandardInput.Close();
            if (!holder.WaitForExit(5000))
            {
                holder.Kill();
            }
        }
    }

    /// <summary>max_user_namespaces is per user namespace and written from inside it, by root there (nsenter gives root every capability in it).</summary>
    private static void ForbidNested(int holder)
    {
        var start = HostPrograms.StartInfo(HostPrograms.Nsenter, $"--user=/proc/{holder}/ns/user", "--", HostPrograms.Shell, "-c", "echo 0 > /proc/sys/user/max_user_namespaces");
        start.RedirectStandardError = true;

        using var process = Process.Start(start) ?? throw new IOException("nsenter did not start");
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new IOException($"forbidding nested user namespaces failed: {error.Trim()}");
        }
    }

    private static string? NamespaceOf(string process)
    {
        try
        {
            return new FileInfo($"/proc/{process}/ns/user").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static FileStream LockHostWide() => HostLock.Acquire(Folder);
}
