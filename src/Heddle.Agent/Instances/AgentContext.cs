using Heddle.Agent.Drivers;
using Heddle.Agent.Node;
using Heddle.Agent.Packages;

namespace Heddle.Agent.Instances;

/// <summary>What every instance runner of one agent shares.</summary>
public sealed class AgentContext
{
    public required AgentOptions Options { get; init; }

    public required NodeTopology Topology { get; init; }

    public required PackageCache Packages { get; init; }

    public required IInstanceDriver Driver { get; init; }

    public required PortAllocator Ports { get; init; }

    /// <summary>For HTTP probes.</summary>
    public required HttpClient ProbeClient { get; init; }

    public required TimeProvider Time { get; init; }

    /// <summary>Each service's own uid on this node; null when the agent is not root and instances run as its own user.</summary>
    public Isolation.ServiceIdentities? Identities { get; init; }

    public string InstancesDirectory => Path.Combine(Options.StateDirectory, "instances");
}
