using Heddle.Agent.Drivers;
using Heddle.Agent.Node;
using Heddle.Agent.Packages;

namespace Heddle.Agent.Instances;

/// <summary>What every instance runner of one agent shares.</summary>
public sealed class AgentContext
{
    public required AgentOptions Options { get; init; }

    public required NodeTopology Topology { get; init; }

    public required IPackageSource Packages { get; init; }

    /// <summary>The drivers this node can run, by the model's `driver:` name.</summary>
    public required IReadOnlyDictionary<string, IInstanceDriver> Drivers { get; init; }

    /// <summary>Why a driver this node lacks is unavailable (for the instance's Faulted reason).</summary>
    public IReadOnlyDictionary<string, string> DriverUnavailable { get; init; } = new Dictionary<string, string>();

    /// <summary>Base images for container roles.</summary>
    public required ImageCache Images { get; init; }

    public required PortAllocator Ports { get; init; }

    /// <summary>How an instance's health is probed: <see cref="Probes.ProbeFactory.For"/> (the role's probe) on a real node.</summary>
    public Probes.ProbeChoice Probes { get; init; } = Heddle.Agent.Probes.ProbeFactory.For;

    /// <summary>For HTTP probes.</summary>
    public required HttpClient ProbeClient { get; init; }

    public required TimeProvider Time { get; init; }

    /// <summary>Where the supervisor says which instances it starts and stops, and why.</summary>
    public Microsoft.Extensions.Logging.ILogger Log { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>The uids instances may run as on this host (null when the agent is not root: instances run as its own user).</summary>
    public Isolation.UidClaims? Uids { get; init; }

    /// <summary>Where starts, restarts and probe results are counted (null: not counted).</summary>
    public Metrics.AgentMetrics? Metrics { get; init; }

    public string InstancesDirectory => Path.Combine(Options.StateDirectory, "instances");
}
