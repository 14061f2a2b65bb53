namespace Heddle.Model.Definition;

/// <summary>Dedicated cores and memory for one instance; <see cref="Name"/> is set for the named sizes.</summary>
public sealed record RoleSize(int Cores, int MemoryMiB, string? Name = null)
{
    public const int MaxCores = 256;
    public const int MinMemoryMiB = 16;
    public const int MaxMemoryMiB = 4 * 1024 * 1024;
    public const int DefaultMaxProcesses = 4096;
    public const int MinMaxProcesses = 16;
    public const int MaxMaxProcesses = 1 << 20;
    public const int DefaultDiskMiB = 1024;
    public const int MinDiskMiB = 16;
    public const int MaxDiskMiB = 1 << 20;

    /// <summary>How many tasks (processes and threads) the instance may have at once: its pids cgroup limit, so a fork bomb stays inside it.</summary>
    public int MaxProcesses { get; init; } = DefaultMaxProcesses;

    /// <summary>
    /// The instance's own disk (Cloud Services' LocalStorage): its working folder, its /tmp and, for a container, every
    /// write to its file system live on a file-backed ext4 image of this size, so writing past it fails for it alone.
    /// </summary>
    public int DiskMiB { get; init; } = DefaultDiskMiB;

    /// <summary>The sizes of the cloud fabric Heddle imitates, by the names it gave them.</summary>
    public static IReadOnlyDictionary<string, RoleSize> Named { get; } = new Dictionary<string, RoleSize>(StringComparer.Ordinal)
    {
        ["extrasmall"] = new(1, 768, "extrasmall"),
        ["small"] = new(1, 1792, "small"),
        ["medium"] = new(2, 3584, "medium"),
        ["large"] = new(4, 7168, "large"),
        ["extralarge"] = new(8, 14336, "extralarge"),
    };

    /// <summary>A role that names no size gets <c>small</c>, as the cloud fabric's roles did.</summary>
    public static RoleSize Default => Named["small"];

    public override string ToString() => Name is null ? $"{Cores} cores, {MemoryMiB} MiB" : $"{Name} ({Cores} cores, {MemoryMiB} MiB)";
}
