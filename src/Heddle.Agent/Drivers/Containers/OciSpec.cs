using System.Text.Json.Nodes;

namespace Heddle.Agent.Drivers.Containers;

/// <summary>What one container is: everything <see cref="OciSpec"/> needs to write its config.json.</summary>
internal sealed record ContainerSpec
{
    public required string Hostname { get; init; }

    /// <summary>The mounted overlay (absolute, not a link).</summary>
    public required string Rootfs { get; init; }

    public required IReadOnlyList<string> Args { get; init; }

    public required IReadOnlyDictionary<string, string> Environment { get; init; }

    public string WorkingDirectory { get; init; } = "/app";

    public required int Uid { get; init; }

    public required int Gid { get; init; }

    /// <summary>Relative to each cgroup hierarchy's root: heddle/&lt;node&gt;/&lt;instance&gt;.</summary>
    public required string CgroupsPath { get; init; }

    public required string Cpus { get; init; }

    public required string Mems { get; init; }

    public required long MemoryBytes { get; init; }

    /// <summary>Also cap memory + swap at <see cref="MemoryBytes"/> (only where the kernel accounts swap).</summary>
    public bool LimitSwap { get; init; }

    public required int MaxProcesses { get; init; }

    /// <summary>RLIMIT_NOFILE inside (at most what the agent itself may raise it to).</summary>
    public int OpenFiles { get; init; } = 1024;

    /// <summary>Host folders bind-mounted read-only (source → destination inside).</summary>
    public IReadOnlyList<(string Source, string Destination)> ReadOnlyBinds { get; init; } = [];
}

/// <summary>
/// An OCI runtime config.json, written by the agent. What `runc spec` gives, tightened: the host's network (ports as
/// the process driver gives them), new pid, mount, ipc, uts and cgroup namespaces, the service's own uid and gid with
/// no supplementary groups, no capabilities but CAP_KILL in the bounding set (runc's default less AUDIT_WRITE and
/// NET_BIND_SERVICE, which would reach the host's audit log and its low ports), noNewPrivileges, runc's masked and
/// read-only paths, and cgroups (cpuset, memory, pids) under Heddle's own hierarchy.
/// </summary>
internal static class OciSpec
{
    internal static readonly string[] MaskedPaths =
    [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
        "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
    ];

    internal static readonly string[] ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    public static JsonObject For(ContainerSpec spec)
    {
        var mounts = new JsonArray
        {
            Mount("/proc", "proc", "proc"),
            Mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
            Mount("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"),
            Mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
            Mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
            Mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
            Mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
        };
        foreach (var (source, destination) in spec.ReadOnlyBinds)
        {
            mounts.Add(Mount(destination, "bind", source, "rbind", "ro", "nosuid", "nodev", "noexec"));
        }

        var memory = new JsonObject { ["limit"] = spec.MemoryBytes };
        if (spec.LimitSwap)
        {
            memory["swap"] = spec.MemoryBytes;
        }

        return new JsonObject
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = new JsonObject
            {
                ["terminal"] = false,
                ["user"] = new JsonObject { ["uid"] = spec.Uid, ["gid"] = spec.Gid, ["additionalGids"] = new JsonArray() },
                ["args"] = Strings(spec.Args),
                ["env"] = Strings(spec.Environment.Select(e => $"{e.Key}={e.Value}")),
                ["cwd"] = spec.WorkingDirectory,
                ["capabilities"] = new JsonObject
                {
                    ["bounding"] = Strings(["CAP_KILL"]),
                    ["effective"] = new JsonArray(),
                    ["permitted"] = new JsonArray(),
                    ["inheritable"] = new JsonArray(),
                    ["ambient"] = new JsonArray(),
                },
                ["rlimits"] = new JsonArray { new JsonObject { ["type"] = "RLIMIT_NOFILE", ["hard"] = spec.OpenFiles, ["soft"] = spec.OpenFiles } },
                ["noNewPrivileges"] = true,
            },
            ["root"] = new JsonObject { ["path"] = spec.Rootfs, ["readonly"] = false },
            ["hostname"] = spec.Hostname,
            ["mounts"] = mounts,
            ["linux"] = new JsonObject
            {
                ["cgroupsPath"] = "/" + spec.CgroupsPath.TrimStart('/'),
                ["resources"] = new JsonObject
                {
                    ["devices"] = new JsonArray { new JsonObject { ["allow"] = false, ["access"] = "rwm" } },
                    ["cpu"] = new JsonObject { ["cpus"] = spec.Cpus, ["mems"] = spec.Mems },
                    ["memory"] = memory,
                    ["pids"] = new JsonObject { ["limit"] = spec.MaxProcesses },
                },
                ["namespaces"] = new JsonArray
                {
                    new JsonObject { ["type"] = "pid" },
                    new JsonObject { ["type"] = "ipc" },
                    new JsonObject { ["type"] = "uts" },
                    new JsonObject { ["type"] = "mount" },
                    new JsonObject { ["type"] = "cgroup" },
                },
                ["maskedPaths"] = Strings(MaskedPaths),
                ["readonlyPaths"] = Strings(ReadonlyPaths),
                ["seccomp"] = SeccompProfile.Default.ToJson(),
            },
        };
    }

    private static JsonObject Mount(string destination, string type, string source, params string[] options)
    {
        var mount = new JsonObject { ["destination"] = destination, ["type"] = type, ["source"] = source };
        if (options.Length > 0)
        {
            mount["options"] = Strings(options);
        }

        return mount;
    }

    private static JsonArray Strings(IEnumerable<string> values) => [.. values.Select(v => (JsonNode)JsonValue.Create(v))];
}
