using System.Globalization;
using Heddle.Contracts;

namespace Heddle.Agent.Isolation;

/// <summary>The uid and gid an instance runs as: its service's own for the whole cluster.</summary>
public sealed record Identity(int Uid, int Gid);

/// <summary>
/// Which uid an instance may run as on this host. The controller gives each service a uid of its own for the whole
/// cluster; this agent takes it only from its own --uid-range, and never while a process of anything else runs as it:
/// each uid in use is claimed host-wide in <c>/run/heddle/uids/&lt;uid&gt;</c> for one cluster (its CA's fingerprint) and
/// service, so agents of one cluster sharing a host (`heddle up`) agree, while a second cluster handing out the same
/// uid, or a user of the host that has it, is refused with a reason instead of sharing its files and processes.
/// A claim whose uid no process runs as any more is taken over.
/// </summary>
public sealed class UidClaims(UidRange range, string cluster, string folder = UidClaims.DefaultFolder)
{
    public const string DefaultFolder = "/run/heddle/uids";

    private readonly Lock _lock = new();

    public UidRange Range => range;

    /// <summary>The identity <paramref name="service"/> runs as here; throws, saying why, when this host cannot give it <paramref name="uid"/>.</summary>
    public Identity Claim(int uid, string service)
    {
        if (uid == 0)
        {
            throw new InvalidOperationException($"the controller gave service {service} no uid (a controller older than this agent); upgrade the controller");
        }

        if (!range.Contains(uid))
        {
            throw new InvalidOperationException($"the controller gave service {service} uid {uid}, outside this agent's --uid-range {range}; give the controller and its agents the same range");
        }

        var owner = $"{cluster} {service}";
        lock (_lock)
        {
            using var hostWide = LockHostWide();
            var file = Path.Combine(folder, uid.ToString(CultureInfo.InvariantCulture));
            var claimed = File.Exists(file) ? File.ReadAllText(file).Trim() : null;
            if (claimed != owner && ProcessesRunningAs(uid) is { Count: > 0 } pids)
            {
                var holder = claimed is null ? "a process Heddle did not start" : $"service {claimed.Split(' ').Last()} of another cluster";
                throw new InvalidOperationException(
                    $"uid {uid}, given to service {service}, is in use on this host by {holder} (pid {string.Join(", ", pids.Take(3))}); "
                    + "give each cluster on a host its own --uid-range, and keep host users out of it");
            }

            if (claimed != owner)
            {
                File.WriteAllText(file + ".partial", owner + "\n");
                File.Move(file + ".partial", file, overwrite: true);
            }
        }

        return new Identity(uid, uid);
    }

    /// <summary>Removes this cluster's claims whose uid no process runs as any more (an agent's teardown); returns those uids.</summary>
    public IReadOnlyList<int> ReleaseUnused()
    {
        var released = new List<int>();
        lock (_lock)
        {
            if (!Directory.Exists(folder))
            {
                return released;
            }

            using var hostWide = LockHostWide();

            foreach (var file in Directory.EnumerateFiles(folder))
            {
                try
                {
                    if (!file.EndsWith(".lock", StringComparison.Ordinal) && int.TryParse(Path.GetFileName(file), NumberStyles.None, CultureInfo.InvariantCulture, out var uid)
                        && File.ReadAllText(file).StartsWith(cluster + " ", StringComparison.Ordinal) && ProcessesRunningAs(uid).Count == 0)
                    {
                        File.Delete(file);
                        released.Add(uid);
                    }
                }
                catch (IOException)
                {
                }
            }
        }

        return released;
    }

    /// <summary>Every agent of the host (of any cluster) checks and claims under one lock file, so two never claim a uid at once.</summary>
    private FileStream LockHostWide()
    {
        Directory.CreateDirectory(folder);
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return HostLock.Acquire(folder);
    }

    /// <summary>Pids whose real, effective or saved uid is <paramref name="uid"/> (from /proc/&lt;pid&gt;/status).</summary>
    public static IReadOnlyList<int> ProcessesRunningAs(int uid)
    {
        var found = new List<int>();
        var text = uid.ToString(CultureInfo.InvariantCulture);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var line = File.ReadLines(Path.Combine(dir, "status")).FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
                if (line is not null && line.Split('\t', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(3).Contains(text))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile.
            }
        }

        return found;
    }
}
