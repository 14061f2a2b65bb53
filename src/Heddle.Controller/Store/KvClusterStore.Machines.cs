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
        List<KvCondition> conditions = [new(Keys.Machine(machine.Name), 0), new(Keys.MachineMac(machine.Mac), 0)];
        if (machine.HostImage is { } image)
        {
            // The image as this copy knows it, unchanged at the commit (a delete that commits first makes this add fail),
            // and written again, so that a delete that checked the machines before this add commits fails in turn.
            if (_mirror.Get(Keys.HostImage(image)) is not { } entry)
            {
                return MachineAddOutcome.HostImageMissing;
            }

            conditions.Add(new(entry.Key, entry.ModRevision));
            writes.Put(entry.Key, Decode<HostImageRecord>(entry));
        }

        if (await CommitAsync(conditions, writes.List, cancellationToken))
        {
            return MachineAddOutcome.Added;
        }

        return _mirror.Get(Keys.Machine(machine.Name)) is not null ? MachineAddOutcome.NameTaken
            : _mirror.Get(Keys.MachineMac(machine.Mac)) is not null ? MachineAddOutcome.MacTaken
            : MachineAddOutcome.HostImageMissing;
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

    public async Task<MachineImageOutcome> SetMachineHostImageAsync(string name, string hostImage, CancellationToken cancellationToken = default)
    {
        for (var attempt = 0; attempt < Retries; attempt++)
        {
            var (conditions, writes) = (new Dictionary<string, long>(StringComparer.Ordinal), new Writes());
            var outcome = SetMachineImage(name, hostImage, conditions, writes);
            if (outcome != MachineImageOutcome.Set)
            {
                return outcome;
            }

            if (await CommitAsync([.. conditions.Select(c => new KvCondition(c.Key, c.Value))], writes.List, cancellationToken))
            {
                return MachineImageOutcome.Set;
            }
        }

        throw new KvUnavailableException($"store busy: machine {name} changed under {Retries} writes in a row");
    }

    /// <summary>
    /// Adds to a commit the writes that set a machine to boot a host image, and their conditions: the machine and the
    /// image as this copy has them. The image is written again, as an add does: a delete that read the machines before
    /// the commit then fails. Nothing is added when either is missing.
    /// </summary>
    private MachineImageOutcome SetMachineImage(string name, string hostImage, Dictionary<string, long> conditions, Writes writes)
    {
        if (_mirror.Get(Keys.Machine(name)) is not { } machine)
        {
            return MachineImageOutcome.MachineMissing;
        }

        if (_mirror.Get(Keys.HostImage(hostImage)) is not { } image)
        {
            return MachineImageOutcome.HostImageMissing;
        }

        conditions[machine.Key] = machine.ModRevision;
        conditions[image.Key] = image.ModRevision;
        writes.Put(machine.Key, Decode<MachineRecord>(machine) with { HostImage = hostImage });
        writes.Put(image.Key, Decode<HostImageRecord>(image));
        return MachineImageOutcome.Set;
    }

    public async Task<bool> AddHostImageAsync(HostImageRecord image, CancellationToken cancellationToken = default) =>
        await CommitAsync([new(Keys.HostImage(image.Name), 0)], [Put(Keys.HostImage(image.Name), image)], cancellationToken);

    public HostImageRecord? GetHostImage(string name) => Read<HostImageRecord>(Keys.HostImage(name));

    public IReadOnlyList<HostImageRecord> ListHostImages() => [.. ReadAll<HostImageRecord>("hostimages/").OrderBy(i => i.Name, StringComparer.Ordinal)];

    public async Task<HostImageDeleteOutcome> DeleteHostImageAsync(string name, CancellationToken cancellationToken = default)
    {
        for (var attempt = 0; attempt < Retries; attempt++)
        {
            if (_mirror.Get(Keys.HostImage(name)) is not { } entry)
            {
                return HostImageDeleteOutcome.Missing;
            }

            // Read after the image: a machine added to it later rewrites the image, and this commit fails.
            if (ListMachines().Any(m => m.HostImage == name))
            {
                return HostImageDeleteOutcome.InUse;
            }

            if (await CommitAsync([new(entry.Key, entry.ModRevision)], [KvWrite.Delete(entry.Key)], cancellationToken))
            {
                return HostImageDeleteOutcome.Deleted;
            }
        }

        throw new KvUnavailableException($"store busy: host image {name} changed under {Retries} writes in a row");
    }
}
