using System.Globalization;

namespace Heddle.Agent.Drivers;

/// <summary>
/// The cgroups of each instance, under heddle/&lt;node&gt;/: cpuset (its CPUs), memory (its cap), pids (its task limit)
/// and, on v1, freezer (so every task can be killed at once) — v1 (one hierarchy per controller) or v2 (one unified
/// hierarchy), whichever the host mounts. Created by root and left owned by root, so an instance running as its own
/// uid cannot move itself or its children out. Only as root; elsewhere the driver relies on affinity.
/// </summary>
internal sealed class Cgroups
{
    private const string Root = "/sys/fs/cgroup";
    private static readonly string[] V1Controllers = ["cpuset", "memory", "pids", "freezer"];

    private Cgroups(string version, IReadOnlyDictionary<string, string> parents, string node)
    {
        Version = version;
        Parents = parents;
        _node = node;
    }

    /// <summary>This agent's folder name under heddle/ in each hierarchy.</summary>
    private readonly string _node;

    public string Version { get; }

    /// <summary>Whether memory + swap can be capped (v1 with swap accounting, or v2).</summary>
    public bool AccountsSwap => Version == "v2" || File.Exists(Path.Combine(Parents["memory"], "memory.memsw.limit_in_bytes"));

    /// <summary>The instance's cgroup relative to each hierarchy's root (heddle/&lt;node&gt;/&lt;instance&gt;): runc's cgroupsPath.</summary>
    public string RelativePath(string instance) => Path.GetRelativePath(Version == "v2" ? Root : Path.Combine(Root, "memory"), Folder(Version == "v2" ? "unified" : "memory", instance));

    /// <summary>The memory nodes instances may use (those of Heddle's own cpuset).</summary>
    public string Mems() => Read(Path.Combine(Parents[Version == "v2" ? "unified" : "cpuset"], Version == "v2" ? "cpuset.mems.effective" : "cpuset.mems"));

    /// <summary>v1: controller → its heddle/&lt;node&gt; folder; v2: "unified" → heddle/&lt;node&gt;.</summary>
    private IReadOnlyDictionary<string, string> Parents { get; }

    /// <summary>
    /// Prepares heddle/&lt;node&gt;-&lt;hash of the agent's state folder&gt;/ in each hierarchy (so two agents of the same
    /// node name on one machine, as test clusters are, never share an instance's cgroup); null (with the reason) when
    /// cgroups cannot be used here.
    /// </summary>
    public static Cgroups? Open(string nodeName, string stateDirectory, out string? unavailable)
    {
        var node = $"{nodeName}-{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(stateDirectory))))[..8]}";
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
                File.WriteAllText(Path.Combine(Root, "cgroup.subtree_control"), "+cpuset +memory +pids");
                File.WriteAllText(Path.Combine(heddle, "cgroup.subtree_control"), "+cpuset +memory +pids");
                var parent = Path.Combine(heddle, Safe(node));
                Directory.CreateDirectory(parent);
                File.WriteAllText(Path.Combine(parent, "cgroup.subtree_control"), "+cpuset +memory +pids");
                return new Cgroups("v2", new Dictionary<string, string> { ["unified"] = parent }, Safe(node));
            }

            var missing = V1Controllers.Where(c => !Directory.Exists(Path.Combine(Root, c))).ToList();
            if (missing.Count > 0)
            {
                unavailable = $"no {string.Join(", ", missing)} cgroup hierarchy is mounted";
                return null;
            }

            var parents = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var controller in V1Controllers)
            {
                // A v1 cpuset child must have cpus and mems before a task can join it: inherit them down the path.
                parents[controller] = controller == "cpuset"
                    ? MakeCpusetPath(Path.Combine(Root, controller), ["heddle", Safe(node)])
                    : Directory.CreateDirectory(Path.Combine(Root, controller, "heddle", Safe(node))).FullName;
            }

            return new Cgroups("v1", parents, Safe(node));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            unavailable = $"cgroups are not writable ({e.Message})";
            return null;
        }
    }

    /// <summary>What the instance is confined by, for `heddle nodes` and the agent's log.</summary>
    public string Describe() => Version == "v2" ? "cgroup v2 (cpuset, memory, pids, cgroup.kill)" : "cgroup v1 (cpuset, memory, pids, freezer)";

    /// <summary>Creates the instance's cgroups with its limits; returns the cgroup.procs files its first process must join.</summary>
    public IReadOnlyList<string> Create(string instance, IReadOnlyList<int> realCpus, long memoryBytes, int maxProcesses)
    {
        var cpus = string.Join(',', realCpus.Distinct().Order());
        var memory = memoryBytes.ToString(CultureInfo.InvariantCulture);
        var pids = maxProcesses.ToString(CultureInfo.InvariantCulture);
        if (Version == "v2")
        {
            var dir = Folder("unified", instance);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "cpuset.cpus"), cpus);
            File.WriteAllText(Path.Combine(dir, "memory.max"), memory);
            File.WriteAllText(Path.Combine(dir, "memory.swap.max"), "0");
            File.WriteAllText(Path.Combine(dir, "pids.max"), pids);
            return [Path.Combine(dir, "cgroup.procs")];
        }

        foreach (var controller in V1Controllers)
        {
            Directory.CreateDirectory(Folder(controller, instance));
        }

        File.WriteAllText(Path.Combine(Folder("cpuset", instance), "cpuset.cpus"), cpus);
        File.WriteAllText(Path.Combine(Folder("cpuset", instance), "cpuset.mems"), File.ReadAllText(Path.Combine(Parents["cpuset"], "cpuset.mems")).Trim());
        File.WriteAllText(Path.Combine(Folder("memory", instance), "memory.limit_in_bytes"), memory);
        TryWrite(Path.Combine(Folder("memory", instance), "memory.memsw.limit_in_bytes"), memory); // only with swap accounting
        File.WriteAllText(Path.Combine(Folder("pids", instance), "pids.max"), pids);
        return [.. V1Controllers.Select(c => Path.Combine(Folder(c, instance), "cgroup.procs"))];
    }

    /// <summary>The tasks in the instance's cgroup, whatever session or process group they have made for themselves.</summary>
    public IReadOnlyList<int> Tasks(string instance)
    {
        try
        {
            return [.. File.ReadAllLines(Path.Combine(Folder(Version == "v2" ? "unified" : "pids", instance), "cgroup.procs"))
                .Where(l => l.Length > 0).Select(l => int.Parse(l, CultureInfo.InvariantCulture))];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>Sends <paramref name="signal"/> to every task of the instance (SIGTERM at stop: descendants that left the process group hear it too).</summary>
    public void SignalAll(string instance, int signal)
    {
        foreach (var pid in Tasks(instance))
        {
            Posix.Signal(pid, signal);
        }
    }

    /// <summary>
    /// Kills every task of the instance so that none can fork a survivor meanwhile: cgroup.kill on v2; on v1 the
    /// freezer stops them all, each is sent SIGKILL, and the thaw lets the kills land.
    /// </summary>
    public void KillAll(string instance)
    {
        if (Version == "v2")
        {
            var kill = Path.Combine(Folder("unified", instance), "cgroup.kill");
            if (File.Exists(kill))
            {
                TryWrite(kill, "1");
                return;
            }

            SignalAll(instance, Posix.SIGKILL);
            return;
        }

        var state = Path.Combine(Folder("freezer", instance), "freezer.state");
        if (!TryWrite(state, "FROZEN"))
        {
            SignalAll(instance, Posix.SIGKILL);
            return;
        }

        for (var i = 0; i < 100 && Read(state) == "FREEZING"; i++)
        {
            Thread.Sleep(10);
        }

        foreach (var pid in File.ReadAllLines(Path.Combine(Folder("freezer", instance), "cgroup.procs")).Where(l => l.Length > 0))
        {
            Posix.Signal(int.Parse(pid, CultureInfo.InvariantCulture), Posix.SIGKILL);
        }

        TryWrite(state, "THAWED");
    }

    /// <summary>How many times the kernel has killed a task of the instance for memory (from memory.oom_control or memory.events).</summary>
    public long OomKills(string instance)
    {
        var file = Version == "v2" ? Path.Combine(Folder("unified", instance), "memory.events") : Path.Combine(Folder("memory", instance), "memory.oom_control");
        var line = ReadLines(file).FirstOrDefault(l => l.StartsWith("oom_kill ", StringComparison.Ordinal));
        return line is not null && long.TryParse(line[9..], CultureInfo.InvariantCulture, out var count) ? count : 0;
    }

    /// <summary>Removes the instance's cgroups once its tasks are gone (a cgroup with tasks cannot be removed).</summary>
    public void Remove(string instance)
    {
        foreach (var controller in Parents.Keys)
        {
            try
            {
                var dir = Folder(controller, instance);
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

    /// <summary>
    /// Removes this agent's own cgroup folders, with any empty instance cgroups left in them (a cluster's teardown). On
    /// v1 that is heddle/&lt;node&gt; in every hierarchy, not only the four the agent writes: runc makes an instance's
    /// path in each one mounted (cpu, cpuacct, blkio, devices, name=systemd, ...) and removes only the instance's folder.
    /// </summary>
    public void RemoveAll()
    {
        IEnumerable<string> others = Version == "v2" ? [] : Directory.EnumerateDirectories(Root).Select(h => Path.Combine(h, "heddle", _node)).Where(Directory.Exists);
        foreach (var parent in Parents.Values.Union(others, StringComparer.Ordinal).ToList())
        {
            try
            {
                foreach (var child in Directory.EnumerateDirectories(parent))
                {
                    Directory.Delete(child);
                }

                Directory.Delete(parent);
            }
            catch (IOException)
            {
                // A cgroup with tasks stays: something still runs in it.
            }
        }
    }

    public static string Safe(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));

    private string Folder(string controller, string instance) => Path.Combine(Parents[controller], Safe(instance));

    private static bool TryWrite(string file, string value)
    {
        try
        {
            File.WriteAllText(file, value);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string Read(string file)
    {
        try
        {
            return File.ReadAllText(file).Trim();
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    private static IEnumerable<string> ReadLines(string file)
    {
        try
        {
            return File.ReadAllLines(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
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
}
