using System.Globalization;
using Heddle.Contracts.Agents;
using Heddle.Model.Definition;
using Heddle.Model.Validation;

namespace Heddle.Agent.Instances;

/// <summary>The environment an instance starts with: nothing of the host's, the role's own variables and HEDDLE_*.</summary>
internal static class InstanceEnvironment
{
    public static Dictionary<string, string> For(RoleDefinition role, InstanceGoal goal, IReadOnlyDictionary<string, int> ports, AgentOptions options)
    {
        var env = new Dictionary<string, string>(role.Environment, StringComparer.Ordinal);
        env["HEDDLE_SERVICE"] = goal.Service;
        env["HEDDLE_ROLE"] = goal.Role;
        env["HEDDLE_INSTANCE"] = goal.InstanceId;
        env["HEDDLE_INDEX"] = goal.Index.ToString(CultureInfo.InvariantCulture);
        env["HEDDLE_UPGRADE_DOMAIN"] = goal.UpgradeDomain.ToString(CultureInfo.InvariantCulture);
        env["HEDDLE_ADDRESS"] = options.Address;
        env["HEDDLE_NODE"] = options.NodeName;
        env["HEDDLE_CPUS"] = string.Join(',', goal.Cpus);
        foreach (var (name, port) in ports)
        {
            env[$"HEDDLE_PORT_{Names.ToEnvironmentSuffix(name)}"] = port.ToString(CultureInfo.InvariantCulture);
        }

        foreach (var (name, value) in goal.Settings)
        {
            env[$"HEDDLE_SETTING_{Names.ToEnvironmentSuffix(name)}"] = value;
        }

        return env;
    }
}
