using Heddle.Contracts.Api;

namespace Heddle.Controller.Machines;

/// <summary>
/// What a network card asking to boot gets, from what the controller knows of it. Pure. A machine whose node is enrolled
/// gets nothing to install: a machine that keeps network-booting after it was provisioned must not be re-imaged (or given
/// a new join string) by accident; re-imaging is an admin's explicit act (remove the node first).
/// </summary>
public static class BootDecisions
{
    public static (BootAction Action, string Message) Decide(string mac, string? machine, bool enrolled) => (machine, enrolled) switch
    {
        (null, _) => (BootAction.NoImage, $"{mac} is not a registered machine: no image ('heddle machine add {mac} --name NAME --fault-domain FD' registers it)"),
        (_, true) => (BootAction.BootLocal, $"machine {machine} ({mac}) is enrolled as node {machine}: nothing to install (to re-image it, 'heddle nodes remove {machine}' first)"),
        _ => (BootAction.Install, $"machine {machine} ({mac}) gets the host image and a join string for node {machine}"),
    };
}
