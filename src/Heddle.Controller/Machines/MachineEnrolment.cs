using Heddle.Controller.Store;

namespace Heddle.Controller.Machines;

/// <summary>
/// The rule that ties a registered machine to its node: the join string a machine's boot was given enrols that node name
/// and no other, and a registered machine's name is taken by no other join string (a shared one made with 'heddle token
/// create --join' cannot claim it). Pure.
/// </summary>
public static class MachineEnrolment
{
    /// <summary>Why <paramref name="join"/> cannot enrol node <paramref name="node"/>, or null.</summary>
    public static string? Refusal(TokenRecord join, string node, bool nodeIsARegisteredMachine) => join.Machine switch
    {
        { } machine when machine != node => $"this join string was given to machine {machine}'s network boot: it enrols node {machine} only, not '{Printable.Of(node)}'",
        null when nodeIsARegisteredMachine => $"node name {node} is a registered machine's: it enrols only with the join string its network boot is given ('heddle machine list')",
        _ => null,
    };

    /// <summary>
    /// Whether <paramref name="join"/> may enrol its node again in place of a certificate in force: only a disk-less
    /// machine's (set to a host image) own join string, which its boots alone are given.
    /// </summary>
    public static bool EnrolsAgain(TokenRecord join, MachineRecord? machine) => machine is { HostImage: not null } && join.Machine == machine.Name;

    /// <summary>The fault domain and labels a node joins with: a registered machine's, whatever its agent said; else the agent's.</summary>
    public static (string FaultDomain, Dictionary<string, string> Labels) Placement(MachineRecord? machine, string agentFaultDomain, IReadOnlyDictionary<string, string> agentLabels)
    {
        var labels = new Dictionary<string, string>(agentLabels, StringComparer.Ordinal);
        foreach (var (key, value) in machine?.Labels ?? new Dictionary<string, string>())
        {
            labels[key] = value;
        }

        return (machine?.FaultDomain ?? agentFaultDomain, labels);
    }
}
