using Heddle.Agent.Connection;
using Heddle.Agent.Drivers;
using Heddle.Agent.Drivers.Containers;
using Heddle.Agent.Instances;
using Heddle.Agent.Logs;
using Heddle.Agent.Packages;
using Heddle.Agent.Probes;
using Heddle.Model.Definition;

namespace Heddle.Agent.Node;

/// <summary>
/// What an agent takes from the machine it runs on: whether it isolates instances (as root), the cores it offers, the
/// drivers that start instances, the log server the controller reaches it at, where packages come from, how instances
/// are probed, and the housekeeping of instance folders. <see cref="Host"/> is the real machine (`heddle agent`,
/// `heddle up`, tests); `heddle hollow` gives each of its simulated nodes one that starts nothing
/// (<see cref="Hollow.HollowMachine"/>). Everything else (enrolment, the controller stream, the supervisor and the
/// instance runners) is the same agent code either way.
/// </summary>
public sealed record NodeMachine
{
    /// <summary>This host: isolation when root, its topology (or the claimed cores), cgroups, runc, a log server.</summary>
    public static NodeMachine Host => new()
    {
        Isolated = Posix.IsRoot,
        ChecksHostPrograms = true,
        Topology = o => NodeTopology.Detect(o.ClaimCores, o.ClaimThreadsPerCore),
        Drivers = HostDrivers,
        Logs = async (options, identity, supervisor, cancellationToken) => await LogServer.StartAsync(options.Address, options.LogPort, identity, supervisor, cancellationToken),
        Packages = (options, downloads) => new PackageCache(Path.Combine(options.StateDirectory, "cache"), downloads),
        Housekeeping = true,
    };

    /// <summary>Instances run as uids of their own with a disk, mounts and namespaces of their own (the agent is root).</summary>
    public required bool Isolated { get; init; }

    /// <summary>Refuse to start when a program the drivers run is missing.</summary>
    public required bool ChecksHostPrograms { get; init; }

    public required Func<AgentOptions, NodeTopology> Topology { get; init; }

    /// <summary>The drivers, given the agent's options and clock (their waits run on it).</summary>
    public required Func<AgentOptions, TimeProvider, NodeDrivers> Drivers { get; init; }

    /// <summary>Starts listening at the node's address before it enrols (the controller connects there to check it reaches the node).</summary>
    public required Func<AgentOptions, Func<NodeIdentity?>, Func<InstanceSupervisor?>, CancellationToken, Task<ILogEndpoint>> Logs { get; init; }

    /// <summary>The packages of this node, given the client that fetches what its goal state names from the controller.</summary>
    public required Func<AgentOptions, HttpClient, IPackageSource> Packages { get; init; }

    public ProbeChoice Probes { get; init; } = ProbeFactory.For;

    /// <summary>Log rotation, the sweep of old instance folders and disk-use reports, every 2 s.</summary>
    public required bool Housekeeping { get; init; }

    /// <summary>How its instances are isolated, in words, when the machine says it itself; null: worked out from the drivers and uids.</summary>
    public string? Isolation { get; init; }

    private static NodeDrivers HostDrivers(AgentOptions options, TimeProvider time)
    {
        string? unavailable = "disabled by --no-cgroups";
        var cgroups = options.UseCgroups ? Cgroups.Open(options.NodeName, options.StateDirectory, out unavailable) : null;
        var process = new ProcessDriver(cgroups, cgroups is null ? unavailable : null, time);
        string? containerUnavailable = "disabled by --no-containers";
        var container = options.UseContainers ? ContainerDriver.Open(options.StateDirectory, cgroups, time, out containerUnavailable) : null;
        var drivers = new Dictionary<string, IInstanceDriver>(StringComparer.Ordinal) { [process.Name] = process };
        if (container is not null)
        {
            drivers[container.Name] = container;
        }

        return new NodeDrivers(drivers, containerUnavailable is null ? new Dictionary<string, string>() : new Dictionary<string, string> { [DriverNames.Container] = containerUnavailable }, process.Isolation);
    }
}

/// <summary>The drivers a node can run by name, why each it cannot run is unavailable, and the process driver's isolation in words.</summary>
public sealed record NodeDrivers(IReadOnlyDictionary<string, IInstanceDriver> Drivers, IReadOnlyDictionary<string, string> Unavailable, string Isolation);
