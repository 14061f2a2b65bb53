using Heddle.Contracts.Api;
using Heddle.Contracts.Machines;
using Heddle.Contracts.Trust;
using Heddle.Controller.Blobs;
using Heddle.Controller.Hosting;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;

namespace Heddle.Controller.Machines;

/// <summary>
/// Answers the boot service for each network card that asks for a boot script: an unknown MAC gets no image and an
/// event (<see cref="EventKind.UnknownMachineBooted"/>, throttled); a registered machine not yet a node gets a fresh
/// join string that enrols its name once, within <see cref="ControllerOptions.BootJoinLifetime"/>; an enrolled one gets
/// nothing to install, unless it runs disk-less from a host image and its node has gone silent (<see cref="BootDecisions"/>).
/// </summary>
public sealed class BootDecider(IMachineStore machines, MachineRegistry registry, Tokens tokens, CertificateAuthority ca, EventLog events, BlobPeers peers, ControllerInfo info,
    ControllerOptions options, TimeProvider time, Reconciliation.NodeHealthMonitor health)
{
    private readonly EventThrottle _unknown = new(TimeSpan.FromMinutes(10), burst: 20, window: TimeSpan.FromMinutes(1));

    // Join strings: one per machine per BootJoinInterval, and at most 600 a minute over all machines (a store write and an event each).
    private readonly EventThrottle _joins = new(options.BootJoinInterval, burst: 600, window: TimeSpan.FromMinutes(1));

    /// <summary>The decision, or null with the reason when <paramref name="mac"/> is not a MAC address.</summary>
    public async Task<(BootDecision? Decision, string? Error)> DecideAsync(string? mac, CancellationToken cancellationToken = default)
    {
        var normal = MacAddress.Normalise(mac, out var error);
        if (normal is null)
        {
            return (null, error);
        }

        var machine = machines.GetMachineByMac(normal);
        var now = time.GetUtcNow();
        var (action, message) = BootDecisions.Decide(normal, machine?.Name, machine is not null && registry.IsEnrolled(machine.Name), machine?.HostImage,
            machine is null ? null : now - health.LastHeard(machine.Name), options.NodeTimeout / 2);
        if (machine is null)
        {
            if (_unknown.TryTake(normal, now, out var heldBack))
            {
                await events.AddAsync(EventKind.UnknownMachineBooted, normal,
                    $"an unknown machine ({normal}) asked to boot and was given no image{(heldBack > 0 ? $" ({heldBack} more such requests were not recorded, to keep a flood out of the log)" : string.Empty)}",
                    cancellationToken: cancellationToken);
            }

            return (new BootDecision(action, normal, null, null, null, [], message), null);
        }

        await machines.SetMachineBootedAsync(machine.Name, now, cancellationToken);
        if (action != BootAction.Install)
        {
            return (new BootDecision(action, normal, machine.Name, machine.FaultDomain, null, [], message), null);
        }

        if (!_joins.TryTake(machine.Name, now, out _))
        {
            return (new BootDecision(BootAction.TryLater, normal, machine.Name, machine.FaultDomain, null, [],
                $"machine {machine.Name} ({normal}) asked to boot again within {options.BootJoinInterval.TotalSeconds:0.#} s of its last join string: nothing this time; ask again later"), null);
        }

        var (token, record) = await tokens.CreateMachineJoinAsync(machine.Name, normal, options.BootJoinLifetime, cancellationToken);
        await events.AddAsync(EventKind.MachineBooted, machine.Name, $"machine {machine.Name} ({normal}) asked to boot: given {(machine.HostImage is { } named ? $"host image {named}" : "the boot service's kernel and initramfs")} and join token {record.Id} (one use, until {record.Expires:u})",
            cancellationToken: cancellationToken);
        var image = machine.HostImage is { } name && machines.GetHostImage(name) is { } stored ? new BootImage(stored.Name, stored.KernelSha256, stored.InitrdSha256) : null;
        return (new BootDecision(action, normal, machine.Name, machine.FaultDomain, JoinString.Format(token, ca.PublicKeyHash), AgentUrls(), message, image), null);
    }

    /// <summary>Every controller's agent endpoint (a replicated controller's peers), or this one's.</summary>
    private List<string> AgentUrls()
    {
        var all = peers.All().Select(p => p.AgentUrl.ToString()).Order(StringComparer.Ordinal).ToList();
        return all.Count > 0 ? all : info.AgentUrl is { } own ? [own.ToString()] : [];
    }
}
