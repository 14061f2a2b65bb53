using System.Text.Json;
using Heddle.Agent.Drivers;

namespace Heddle.Agent.Instances;

/// <summary>
/// heddle-instance.json in the instance's working directory: what its environment says, plus the role's peers. Written
/// whole in the agent's own folder and renamed by the driver to where the instance reads it, so a reader never sees
/// half a file; one writer at a time.
/// </summary>
internal sealed class InstanceDescription(RunnerState state, AgentOptions options)
{
    private static readonly JsonSerializerOptions Format = new() { WriteIndented = true };
    private readonly Lock _file = new();

    /// <summary>Writes the file for <paramref name="launch"/> (and remembers it as the launch described), unless the driver has no reader for it.</summary>
    public void Write(InstanceLaunch launch)
    {
        if (!state.Driver.ReadsDescription)
        {
            lock (state.Lock)
            {
                state.Described = launch;
            }

            return;
        }

        lock (_file)
        {
            IReadOnlyList<Contracts.Agents.Peer> peers;
            Dictionary<string, int> ports;
            lock (state.Lock)
            {
                state.Described = launch;
                peers = state.Peers;
                ports = state.Ports;
            }

            var goal = state.Goal;
            var description = new
            {
                service = goal.Service,
                role = goal.Role,
                instance = goal.InstanceId,
                index = goal.Index,
                upgradeDomain = goal.UpgradeDomain,
                node = options.NodeName,
                address = options.Address,
                ports,
                settings = goal.Settings,
                cpus = goal.Cpus,
                memoryMiB = goal.MemoryMib,
                environment = launch.Environment,
                peers = peers.Select(p => new
                {
                    instance = p.InstanceId,
                    index = p.Index,
                    upgradeDomain = p.UpgradeDomain,
                    node = p.Node,
                    address = p.Address,
                    ports = p.Ports.ToDictionary(),
                    ready = p.Ready,
                }),
            };
            // Written in the agent's own folder, then renamed to where the driver lets the instance read it.
            var partial = Path.Combine(launch.Directory, "heddle-instance.json.partial");
            File.WriteAllText(partial, JsonSerializer.Serialize(description, Format));
            state.Driver.PlaceDescription(launch, partial);
        }
    }
}
