using Heddle.Contracts.Api;

namespace Heddle.Controller.Machines;

/// <summary>
/// What a network card asking to boot gets, from what the controller knows of it. Pure.
/// <list type="bullet">
/// <item>A machine whose node is enrolled and that has an installed system gets nothing to install: a machine that keeps
/// network-booting after it was provisioned must not be re-imaged (or given a new join string) by accident; re-imaging is
/// an admin's explicit act (remove the node first).</item>
/// <item>A machine set to a host image runs disk-less: the image is its only system, so every boot of it is served the
/// image and a join string that enrols its node again (its earlier certificate went with its memory). Not while its node
/// is still heard from, though: a card asking with the MAC of a machine whose agent is alive is a stranger or a mistake,
/// and is told to ask again until that agent has been silent for <c>connectedWithin</c>.</item>
/// </list>
/// </summary>
public static class BootDecisions
{
    /// <param name="hostImage">The host image the machine is set to boot (disk-less), or null.</param>
    /// <param name="sinceHeard">How long ago its node was last heard from by any controller, or null if never.</param>
    /// <param name="connectedWithin">A node heard from within this is taken to be running.</param>
    public static (BootAction Action, string Message) Decide(string mac, string? machine, bool enrolled, string? hostImage = null, TimeSpan? sinceHeard = null,
        TimeSpan connectedWithin = default) => (machine, enrolled, hostImage) switch
    {
        (null, _, _) => (BootAction.NoImage, $"{mac} is not a registered machine: no image ('heddle machine add {mac} --name NAME --fault-domain FD' registers it)"),
        (_, true, null) => (BootAction.BootLocal, $"machine {machine} ({mac}) is enrolled as node {machine}: nothing to install (to re-image it, 'heddle nodes remove {machine}' first)"),
        (_, true, _) when sinceHeard < connectedWithin => (BootAction.TryLater,
            $"machine {machine} ({mac}) runs disk-less from host image {hostImage}, and its node was heard from {sinceHeard.Value.TotalSeconds:0.0} s ago: it gets its image again once that agent is gone; asking again"),
        (_, true, _) => (BootAction.Install,
            $"machine {machine} ({mac}) runs disk-less from host image {hostImage} and booted again: it gets the image and a join string that enrols node {machine} again (its earlier certificate is revoked when it does)"),
        _ => (BootAction.Install, $"machine {machine} ({mac}) gets the host image and a join string for node {machine}"),
    };
}
