using System.Globalization;

namespace Heddle.Agent.Drivers;

/// <summary>
/// A cpuset and memory cgroup per instance, under heddle/&lt;node&gt;/ — v1 (separate cpuset and memory hierarchies) or
/// v2 (one unified hierarchy), whichever the host mounts. Only as root; elsewhere the driver relies on affinity.
/// </summary>
internal sealed class Cgroups
{
    private const string Root = "/sys/fs/cgroup";

    private Cgroups(string version, IReadOnlyList<string> parents)
    {
        Version = version;
        Parents = parents;
    }

    public string Version { get; }

    /// <summary>v1: [cpuset parent, memory parent]; v2: [parent].</summary>
    private IReadOnlyList<string> Parents { get; }

    /// <summary>Prepares heddle/&lt;node&gt;/ in each hierarchy; null (with the reason) when cgroups cannot be used here.</summary>
    public static Cgroups? Open(string node, out string? unavailable)
    {
        unavailable = null;
        if (!Posix.IsRoot)
        {
            unavailable = "not running as root";
            return null;
        }

        try
        {
            if (File.Exists(Path.Combine(Root, "cgroup.controllers")))
            {
                var heddle = Path.Combine(Root, "heddle");
                Directory.CreateDirectory(heddle);
                File.WriteAllText(Path.Combine(Root, "cgroup.subtree_control"), "+cpuset +memory");
                File.WriteAllText(Path.Combine(heddle, "cgroup.subtree_control"), "+cpuset +memory");
                var parent = Path.Combine(heddle, Safe(node));
                Directory.CreateDirectory(parent);
                File.WriteAllText(Path.Combine(parent, "cgroup.subtree_control"), "+cpuset +memory");
                return new Cgroups("v2", [parent]);
            }

            var cpuset = Path.Combine(Root, "cpuset");
            var memory = Path.Combine(Root, "memory");
            if (!Directory.Exists(cpuset) || !Directory.Exists(memory))
            {
                unavailable = "no cpuset and memory cgroup hierarchies are mounted";
                return null;
            }

            // A v1 cpuset child must have cpus and mems before a task can join it: inherit them down the path.
            var cpusetParent = MakeCpusetPath(cpuset, ["heddle", Safe(node)]);
            var memoryParent = Path.Combine(memory, "heddle", Safe(node));
            Directory.CreateDirectory(memoryParent);
            return new Cgroups("v1", [cpusetParent, memoryParent]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            unavailable = $"cgroups are not writable ({e.Message})";
            return null;
        }
    }

    /// <summary>Creates the instance's cgroups; returns the cgroup.procs files its process must join.</summary>
    public IReadOnlyList<string> Create(string instance, IReadOnlyList<int> realCpus, long memoryBytes)
    {
        var name = Safe(instance);
        var cpus = string.Join(',', realCpus.Distinct().Order());
        if (Version == "v2")
        {
            var dir = Path.Combine(Parents[0], name);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "cpuset.cpus"), cpus);
            File.WriteAllText(Path.Combine(dir, "memory.max"), memoryBytes.ToString(CultureInfo.InvariantCulture));
            return [Path.Combine(dir, "cgroup.procs")];
        }

        var cpuset = Path.Combine(Parents[0], name);
        Directory.CreateDirectory(cpuset);
        File.WriteAllText(Path.Combine(cpuset, "cpuset.cpus"), cpus);
        File.WriteAllText(Path.Combine(cpuset, "cpuset.mems"), File.ReadAllText(Path.Combine(Parents[0], "cpuset.mems")).Trim());
        var memory = Path.Combine(Parents[1], name);
        Directory.CreateDirectory(memory);
        File.WriteAllText(Path.Combine(memory, "memory.limit_in_bytes"), memoryBytes.ToString(CultureInfo.InvariantCulture));
        return [Path.Combine(cpuset, "cgroup.procs"), Path.Combine(memory, "cgroup.procs")];
    }

    /// <summary>Removes the instance's cgroups once its processes are gone (a cgroup with tasks cannot be removed).</summary>
    public void Remove(string instance)
    {
        foreach (var parent in Parents)
        {
            try
            {
                var dir = Path.Combine(parent, Safe(instance));
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir);
                }
            }
            catch (IOException)
            {
            }
        }
    }

    private static string MakeCpusetPath(string root, string[] parts)
    {
        var current = root;
        foreach (var part in parts)
        {
            var next = Path.Combine(current, part);
            Directory.CreateDirectory(next);
            if (File.ReadAllText(Path.Combine(next, "cpuset.cpus")).Trim().Length == 0)
            {
                File.WriteAllText(Path.Combine(next, "cpuset.cpus"), File.ReadAllText(Path.Combine(current, "cpuset.cpus")).Trim());
            }

            if (File.ReadAllText(Path.Combine(next, "cpuset.mems")).Trim().Length == 0)
            {
                File.WriteAllText(Path.Combine(next, "cpuset.mems"), File.ReadAllText(Path.Combine(current, "cpuset.mems")).Trim());
            }

            current = next;
        }

        return current;
    }

    private static string Safe(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
