namespace Heddle.Agent;

/// <summary>How an agent runs. Each is a command-line option of `heddle agent`; defaults in the initialisers.</summary>
public sealed record AgentOptions
{
    /// <summary>The controller's agent endpoint (https: gRPC, and the packages and images this node's goal state names).</summary>
    public required Uri ControllerAgentUrl { get; init; }

    /// <summary>More controllers of the same cluster: the agent moves to the next when the one it talks to does not answer.</summary>
    public IReadOnlyList<Uri> OtherControllerUrls { get; init; } = [];

    /// <summary>Every controller address, the first one first.</summary>
    public IReadOnlyList<Uri> Controllers => [ControllerAgentUrl, .. OtherControllerUrls];

    /// <summary>
    /// The join string (`heddle token create --join`), needed only while the node has no valid certificate in its state
    /// folder; with one, the agent connects with it and the string is not used.
    /// </summary>
    public string? Join { get; init; }

    public required string NodeName { get; init; }

    /// <summary>The address instances listen on and others reach them at.</summary>
    public string Address { get; init; } = "127.0.0.1";

    /// <summary>
    /// The port the agent serves instance logs on at <see cref="Address"/>; the controller connects to it when the node
    /// enrols to check that it can reach the node there. 0 lets the OS choose, the default here for agents embedded
    /// several to a host (tests); `heddle agent --log-port` defaults to 7003, a port an operator can open in a firewall.
    /// </summary>
    public int LogPort { get; init; }

    public string FaultDomain { get; init; } = "fd1";

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>The host image this machine booted (`--host-image`; a host image's init passes its own name), told to the controller.</summary>
    public string? HostImage { get; init; }

    /// <summary>How the host is rebooted when a host rollout says so (only when it runs from a host image); tests give a fake.</summary>
    public Node.IHostRebooter Rebooter { get; init; } = new Node.ForcedReboot();

    /// <summary>Package cache, instance folders and logs, the instance journal.</summary>
    public required string StateDirectory { get; init; }

    /// <summary>Ports handed to instance endpoints. Default 20000–29999.</summary>
    public int PortRangeStart { get; init; } = 20000;

    public int PortRangeEnd { get; init; } = 29999;

    /// <summary>Claim this many physical cores instead of the machine's (for `heddle up`); their CPUs map onto the real ones.</summary>
    public int? ClaimCores { get; init; }

    public int ClaimThreadsPerCore { get; init; } = 1;

    /// <summary>Claim this much memory instead of the machine's.</summary>
    public int? ClaimMemoryMiB { get; init; }

    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Between SIGTERM and SIGKILL when an instance stops. Default 10 s.</summary>
    public TimeSpan StopGracePeriod { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A log file is rotated when it grows past this. Default 10 MiB, keeping 3 old files.</summary>
    public long LogFileMaxBytes { get; init; } = 10L << 20;

    public int LogFilesKept { get; init; } = 3;

    /// <summary>The first restart delay after a crash; it doubles with each crash in a row up to 5 minutes. Default 1 s.</summary>
    public TimeSpan RestartBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Place instances in cpuset, memory and pids cgroups when the host allows (root). Default on.</summary>
    public bool UseCgroups { get; init; } = true;

    /// <summary>Offer the container driver when this node can run it (root, cgroups, runc, overlay). Default on (`--no-containers`).</summary>
    public bool UseContainers { get; init; } = true;

    /// <summary>
    /// As root, the uids this agent runs instances as (`--uid-range`): the controller gives each service one for the whole
    /// cluster, and the agent refuses one outside this range. Default 200000–265535, the controller's default.
    /// </summary>
    public Heddle.Contracts.UidRange UidRange { get; init; } = Heddle.Contracts.UidRange.Default;

    /// <summary>
    /// Fencing: an agent that has heard nothing from the controller (not even its keepalive) for this long stops its
    /// instances, since the controller will have moved them elsewhere (`--fence-after`; set it to the controller's
    /// node timeout; zero turns fencing off). Default 10 s, the controller's default node timeout.
    /// </summary>
    public TimeSpan FenceAfter { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Where the agent serves <c>/metrics</c> (plain HTTP, no authentication: its labels name this node's services):
    /// `--metrics-port`, off by default; on 127.0.0.1 unless `--metrics-address` says otherwise.
    /// </summary>
    public Heddle.Contracts.Metrics.MetricsListenerOptions Metrics { get; init; } = Heddle.Contracts.Metrics.MetricsListenerOptions.Off;

    /// <summary>How long the logs of an instance that no longer exists are kept (`--log-retention`). Default 24 h.</summary>
    public TimeSpan LogRetention { get; init; } = TimeSpan.FromHours(24);
}
