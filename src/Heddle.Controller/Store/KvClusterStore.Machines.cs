using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>
/// Machines under their name (<c>machines/</c>), with their MAC as a key of its own (<c>machine-macs/</c>, holding the
/// name) created on condition of absence, so two machines can never share a MAC, even added at once on two controllers.
/// </summary>
public sealed partial class KvClusterStore : IMachineStore
{
    public async Task<MachineAddOutcome> AddMachineAsync(MachineRecord machine, CancellationToken cancellationToken = default)
    {
        var writes = new Writes();
        writes.Put(Keys.Machine(machine.Name), machine);
        writes.Put(Keys.MachineMac(machine.Mac), machine.Name);
        if (await CommitAsync([new(Keys.Machine(machine.Name), 0), new(Keys.MachineMac(machine.Mac), 0)], writes.List, cancellationToken))
        {
            return MachineAddOutcome.Added;
        }

        return _mirror.Get(Keys.Machine(machine.Name)) is not null ? MachineAddOutcome.NameTaken : MachineAddOutcome.MacTaken;
    }

    public MachineRecord? GetMachine(string name) => Read<MachineRecord>(Keys.Machine(name));

    public MachineRecord? GetMachineByMac(string mac) => Read<string>(Keys.MachineMac(mac)) is { } name && GetMachine(name) is { } machine && machine.Mac == mac ? machine : null;

    public IReadOnlyList<MachineRecord> ListMachines() => [.. ReadAll<MachineRecord>("machines/").OrderBy(m => m.Name, StringComparer.Ordinal)];

    public async Task<MachineRecord?> RemoveMachineAsync(string name, CancellationToken cancellationToken = default)
    {
        for (var attempt = 0; attempt < Retries; attempt++)
        {
            if (_mirror.Get(Keys.Machine(name)) is not { } entry)
            {
                return null;
            }

            var machine = Decode<MachineRecord>(entry);
            var writes = new Writes();
            writes.Delete(entry.Key);
            if (Read<string>(Keys.MachineMac(machine.Mac)) == name)
            {
                writes.Delete(Keys.MachineMac(machine.Mac));
            }

            if (await CommitAsync([new(entry.Key, entry.ModRevision)], writes.List, cancellationToken))
            {
                return machine;
            }
        }

        throw new KvUnavailableException($"store busy: machine {name} changed under {Retries} writes in a row");
    }

    public Task<bool> SetMachineBootedAsync(string name, DateTimeOffset at, CancellationToken cancellationToken = default) =>
        ChangeAsync<MachineRecord>(Keys.Machine(name), m => m with { LastBoot = at }, cancellationToken);
}
