using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;

namespace Heddle.Controller.Machines;

/// <summary>Registered machines as the API shows them, and the changes an admin makes to them (each with its event).</summary>
public sealed class MachineRegistry(IMachineStore machines, ITrustStore trust, Tokens tokens, EventLog events, TimeProvider time)
{
    /// <summary>The machine added, or the errors (nothing changed) with whether they are a conflict (name or MAC taken) rather than bad input.</summary>
    public async Task<(MachineStatus? Added, IReadOnlyList<string> Errors, bool Conflict)> AddAsync(MachineAddRequest request, CancellationToken cancellationToken = default)
    {
        var (mac, errors) = MachineRules.Check(request);
        if (mac is null)
        {
            return (null, errors, false);
        }

        var record = new MachineRecord(request.Name, mac, request.FaultDomain, new Dictionary<string, string>(request.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal), time.GetUtcNow(),
            HostImage: request.HostImage);
        switch (await machines.AddMachineAsync(record, cancellationToken))
        {
            case MachineAddOutcome.NameTaken:
                return (null, [$"a machine named {record.Name} is registered already (MAC {machines.GetMachine(record.Name)?.Mac}); 'heddle machine remove {record.Name}' first, or choose another name"], true);
            case MachineAddOutcome.MacTaken:
                return (null, [$"MAC {mac} is registered already, as machine {machines.GetMachineByMac(mac)?.Name}; 'heddle machine remove' it first"], true);
            case MachineAddOutcome.HostImageMissing:
                return (null, [NoHostImage(record.HostImage!)], false);
        }

        await events.AddAsync(EventKind.MachineAdded, record.Name,
            $"machine {record.Name} registered: MAC {mac}, fault domain {record.FaultDomain}, {(record.HostImage is { } image ? $"host image {image}" : "the boot service's own kernel and initramfs")}");
        return (Status(record), [], false);
    }

    /// <summary>
    /// Sets the host image a machine boots, from its next boot on (a disk-less machine's node runs its old image until
    /// it reboots). The machine, or the error (nothing changed) with whether it is a missing machine rather than bad input.
    /// </summary>
    public async Task<(MachineStatus? Machine, string? Error, bool NotFound)> SetHostImageAsync(string name, string? hostImage, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(hostImage))
        {
            return (null, "the request names no host image; send {\"hostImage\": \"bookworm-2\"} ('heddle hostimage list' shows them)", false);
        }

        var before = machines.GetMachine(name)?.HostImage;
        switch (await machines.SetMachineHostImageAsync(name, hostImage, cancellationToken))
        {
            case MachineImageOutcome.MachineMissing:
                return (null, $"no machine named '{Printable.Of(name)}' ('heddle machine list' shows them)", true);
            case MachineImageOutcome.HostImageMissing:
                return (null, NoHostImage(hostImage), false);
        }

        var machine = machines.GetMachine(name)!;
        await events.AddAsync(EventKind.MachineHostImageSet, name,
            $"machine {name} is set to boot host image {hostImage} (was {before ?? "the boot service's own kernel and initramfs"}); it boots it from its next boot on", cancellationToken: cancellationToken);
        return (Status(machine), null, false);
    }

    private string NoHostImage(string name)
    {
        var images = machines.ListHostImages().Select(i => i.Name).ToList();
        return $"there is no host image '{Printable.Of(name)}' ({(images.Count == 0 ? "there are none: 'heddle hostimage build NAME' makes one" : $"host images: {string.Join(", ", images)}")})";
    }

    public IReadOnlyList<MachineStatus> List() => [.. machines.ListMachines().Select(Status)];

    /// <summary>Forgets a machine and revokes its join strings not used yet; null when there is no such machine. A node it became stays.</summary>
    public async Task<MachineStatus?> RemoveAsync(string name, CancellationToken cancellationToken = default)
    {
        if (await machines.RemoveMachineAsync(name, cancellationToken) is not { } removed)
        {
            return null;
        }

        var revoked = await tokens.RevokeMachineJoinsAsync(name, cancellationToken);
        await events.AddAsync(EventKind.MachineRemoved, name, $"machine {name} ({removed.Mac}) removed{(revoked > 0 ? $"; its join string not used yet was revoked" : string.Empty)}");
        return Status(removed);
    }

    /// <summary>Whether node <paramref name="name"/> holds a certificate in force.</summary>
    public bool IsEnrolled(string name)
    {
        var now = time.GetUtcNow();
        return trust.ListCertificatesOf(name).Any(c => !c.Revoked && c.NotAfter > now);
    }

    public MachineStatus Status(MachineRecord machine)
    {
        var now = time.GetUtcNow();
        var state = IsEnrolled(machine.Name) ? MachineState.Enrolled
            : trust.ListTokens().Any(t => t.Machine == machine.Name && !t.Revoked && t.UsesLeft is null or > 0 && (t.Expires is null || t.Expires > now)) ? MachineState.JoinIssued
            : MachineState.Registered;
        return new MachineStatus(machine.Name, machine.Mac, machine.FaultDomain, machine.Labels, machine.Created, state, machine.LastBoot, machine.HostImage);
    }
}
