using Heddle.Model.Definition;
using Heddle.Placement.Cluster;

namespace Heddle.Placement.Checking;

/// <summary>
/// Checks a set of placements against the hard rules from node topology alone, sharing no code with the
/// allocator's bookkeeping, so a bug there cannot hide itself here. Every violation is a bug in the allocator.
/// </summary>
public static class HardRuleChecker
{
    /// <param name="constraintsOf">The label constraints of each role (none when it returns null).</param>
    /// <param name="driverOf">The driver of each role (process when it returns null).</param>
    public static IReadOnlyList<string> Check(
        IEnumerable<NodeSpec> nodes, IEnumerable<Placement> placements, Func<RoleKey, IReadOnlyDictionary<string, string>?>? constraintsOf = null,
        Func<RoleKey, string?>? driverOf = null)
    {
        var violations = new List<string>();
        var byName = nodes.ToDictionary(n => n.Name, StringComparer.Ordinal);
        var cpuHolder = new Dictionary<(string Node, int Cpu), Placement>();
        var memory = new Dictionary<string, long>(StringComparer.Ordinal);
        var coreTenant = new Dictionary<(string Node, int Core), string>();
        var coreOf = byName.Values.ToDictionary(
            n => n.Name,
            n => n.Cores.SelectMany((threads, core) => threads.Select(cpu => (cpu, core))).ToDictionary(x => x.cpu, x => x.core),
            StringComparer.Ordinal);
        var seen = new HashSet<(RoleKey, int)>();

        foreach (var p in placements)
        {
            var name = $"{p.Role}/{p.Index}";
            if (!seen.Add((p.Role, p.Index)))
            {
                violations.Add($"{name} is placed twice");
            }

            if (!byName.TryGetValue(p.Node, out var node))
            {
                violations.Add($"{name} is on unknown node '{p.Node}'");
                continue;
            }

            if (p.FaultDomain != node.FaultDomain)
            {
                violations.Add($"{name} reports fault domain '{p.FaultDomain}' but node '{p.Node}' is in '{node.FaultDomain}'");
            }

            if (constraintsOf?.Invoke(p.Role) is { } constraints)
            {
                foreach (var (key, value) in constraints)
                {
                    if (!node.Labels.TryGetValue(key, out var actual) || actual != value)
                    {
                        violations.Add($"{name} needs label {key}={value} but node '{p.Node}' has {(actual is null ? "no such label" : $"{key}={actual}")}");
                    }
                }
            }

            var driver = driverOf?.Invoke(p.Role) ?? DriverNames.Process;
            if (!node.Drivers.Contains(driver))
            {
                violations.Add($"{name} runs with driver '{driver}' but node '{p.Node}' can run only {string.Join(", ", node.Drivers.Order())}");
            }

            memory[p.Node] = memory.GetValueOrDefault(p.Node) + p.MemoryMiB;
            foreach (var cpu in p.Cpus)
            {
                if (!coreOf[p.Node].TryGetValue(cpu, out var core))
                {
                    violations.Add($"{name} has CPU {cpu}, which node '{p.Node}' does not have");
                    continue;
                }

                if (!cpuHolder.TryAdd((p.Node, cpu), p))
                {
                    var other = cpuHolder[(p.Node, cpu)];
                    violations.Add($"CPU {cpu} of node '{p.Node}' is given to both {other.Role}/{other.Index} and {name}");
                }

                if (!coreTenant.TryAdd((p.Node, core), p.Role.Tenant) && coreTenant[(p.Node, core)] != p.Role.Tenant)
                {
                    violations.Add($"physical core {core} of node '{p.Node}' serves tenants '{coreTenant[(p.Node, core)]}' and '{p.Role.Tenant}'");
                }
            }
        }

        foreach (var (nodeName, used) in memory)
        {
            if (used > byName[nodeName].MemoryMiB)
            {
                violations.Add($"node '{nodeName}' has {used} MiB allocated but only {byName[nodeName].MemoryMiB} MiB");
            }
        }

        return violations;
    }
}
