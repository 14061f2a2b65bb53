namespace Heddle.Controller.Store;

/// <summary>A machine an admin registered: it becomes node <see cref="Name"/> in fault domain <see cref="FaultDomain"/> when it network-boots.</summary>
public sealed record MachineRecord(string Name, string Mac, string FaultDomain, IReadOnlyDictionary<string, string> Labels, DateTimeOffset Created, DateTimeOffset? LastBoot = null);

/// <summary>What adding a machine came to: both its name and its MAC must be new.</summary>
public enum MachineAddOutcome
{
    Added,
    NameTaken,
    MacTaken,
}

/// <summary>Registered machines, by name and by MAC. Reads from this controller's copy; writes commit before their task completes.</summary>
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
}
