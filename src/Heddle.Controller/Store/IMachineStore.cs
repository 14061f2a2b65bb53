namespace Heddle.Controller.Store;

/// <summary>
/// A machine an admin registered: it becomes node <see cref="Name"/> in fault domain <see cref="FaultDomain"/> when it
/// network-boots, from host image <see cref="HostImage"/> (null: the kernel and initramfs `heddle boot` was given).
/// </summary>
public sealed record MachineRecord(string Name, string Mac, string FaultDomain, IReadOnlyDictionary<string, string> Labels, DateTimeOffset Created, DateTimeOffset? LastBoot = null,
    string? HostImage = null);

/// <summary>A host image: a kernel and an initramfs kept as blobs named by their SHA-256, under a name that always means the same two.</summary>
public sealed record HostImageRecord(string Name, string KernelSha256, long KernelBytes, string InitrdSha256, long InitrdBytes, string? KernelRelease, DateTimeOffset Added);

/// <summary>What adding a machine came to: both its name and its MAC must be new.</summary>
public enum MachineAddOutcome
{
    Added,
    NameTaken,
    MacTaken,

    /// <summary>The host image it names does not exist (any more).</summary>
    HostImageMissing,
}

/// <summary>What setting a machine's host image came to.</summary>
public enum MachineImageOutcome
{
    Set,

    /// <summary>There is no such machine.</summary>
    MachineMissing,

    /// <summary>The host image it names does not exist (any more).</summary>
    HostImageMissing,
}

/// <summary>What deleting a host image came to.</summary>
public enum HostImageDeleteOutcome
{
    Deleted,
    Missing,

    /// <summary>A registered machine is set to boot it: nothing was deleted.</summary>
    InUse,
}

/// <summary>Registered machines, by name and by MAC, and the host images they boot. Reads from this controller's copy; writes commit before their task completes.</summary>
public interface IMachineStore
{
    /// <summary>Adds a machine; nothing is written unless both its name and its MAC are free.</summary>
    Task<MachineAddOutcome> AddMachineAsync(MachineRecord machine, CancellationToken cancellationToken = default);

    MachineRecord? GetMachine(string name);

    /// <summary>The machine with this MAC (normal form, lower-case with colons), or null.</summary>
    MachineRecord? GetMachineByMac(string mac);

    IReadOnlyList<MachineRecord> ListMachines();

    /// <summary>Forgets a machine (its name and its MAC); the record removed, or null when there was none.</summary>
    Task<MachineRecord?> RemoveMachineAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Notes when a machine last asked to boot; false when it is gone.</summary>
    Task<bool> SetMachineBootedAsync(string name, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sets the host image a machine boots from its next boot on; the image must exist at the commit (a delete of it
    /// that commits first makes this fail, and this one makes a delete that checked the machines before it fail).
    /// </summary>
    Task<MachineImageOutcome> SetMachineHostImageAsync(string name, string hostImage, CancellationToken cancellationToken = default);

    /// <summary>Adds a host image; false (nothing written) when the name is taken.</summary>
    Task<bool> AddHostImageAsync(HostImageRecord image, CancellationToken cancellationToken = default);

    HostImageRecord? GetHostImage(string name);

    IReadOnlyList<HostImageRecord> ListHostImages();

    /// <summary>Forgets a host image, unless a machine is set to boot it (checked in the same commit).</summary>
    Task<HostImageDeleteOutcome> DeleteHostImageAsync(string name, CancellationToken cancellationToken = default);
}
