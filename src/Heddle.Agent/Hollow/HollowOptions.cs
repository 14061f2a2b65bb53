namespace Heddle.Agent.Hollow;

/// <summary>How `heddle hollow` runs its nodes. Each is a command-line option; defaults in the initialisers.</summary>
public sealed record HollowOptions
{
    /// <summary>The controllers' agent endpoints, the first one first (each node tries the next when one does not answer).</summary>
    public required IReadOnlyList<Uri> Controllers { get; init; }

    /// <summary>The join string every node enrols with (it must allow as many uses as there are nodes).</summary>
    public required string Join { get; init; }

    public required int Nodes { get; init; }

    /// <summary>Package cache and each node's state folder (certificate, instance journal, instance folders).</summary>
    public required string StateDirectory { get; init; }

    public int CoresPerNode { get; init; } = 32;

    /// <summary>Memory each node claims. Default 8 GiB per core.</summary>
    public int? MemoryMiB { get; init; }

    public int FaultDomains { get; init; } = 20;

    /// <summary>Node i (from 0) is named prefix + (i + 1).</summary>
    public string Prefix { get; init; } = "h";

    /// <summary>
    /// Node i listens at 127.<see cref="Subnet"/>.(i / 250).(i % 250 + 1): distinct loopback addresses (the controller
    /// accepts loopback ones when it is on loopback itself), 64,000 nodes at most. Default 128, away from `heddle up`'s
    /// 127.0.1.x and the test clusters' 127.0.K.x.
    /// </summary>
    public int Subnet { get; init; } = 128;

    /// <summary>Between Starting and Ready (the time a real instance would take to start and pass its first probe). Default 0.</summary>
    public TimeSpan ReadyAfter { get; init; } = TimeSpan.Zero;

    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The agents' fencing (<see cref="AgentOptions.FenceAfter"/>). Default off: each agent would look at its silence 10
    /// times a second, 100,000 wakeups a second at 10,000 nodes, and a hollow instance stopped by fencing frees nothing.
    /// </summary>
    public TimeSpan FenceAfter { get; init; } = TimeSpan.Zero;

    /// <summary>How many nodes enrol and connect at once.</summary>
    public int StartConcurrency { get; init; } = 32;

    public const int MaxNodes = 256 * 250;

    public string NodeName(int i) => $"{Prefix}{i + 1}";

    public string Address(int i) => $"127.{Subnet}.{i / 250}.{i % 250 + 1}";

    /// <summary>Why these options cannot run, naming the option; null when they can.</summary>
    public string? Problem() => this switch
    {
        { Controllers.Count: 0 } => "--controller names no controller",
        { Nodes: < 1 or > MaxNodes } => $"--nodes {Nodes} is not between 1 and {MaxNodes}",
        { CoresPerNode: < 1 or > 1024 } => $"--cores {CoresPerNode} is not between 1 and 1024",
        { FaultDomains: < 1 } => $"--fault-domains {FaultDomains} is not at least 1",
        { MemoryMiB: < 1 } => $"--memory-mib {MemoryMiB} is not at least 1",
        { Subnet: < 1 or > 255 } => $"the subnet {Subnet} is not between 1 and 255",
        { ReadyAfter.Ticks: < 0 } => "--ready-after is negative",
        { HeartbeatInterval.Ticks: <= 0 } => "--heartbeat must be more than 0s",
        { Prefix.Length: 0 } => "--prefix is empty",
        _ when !System.Text.RegularExpressions.Regex.IsMatch(Prefix, "^[a-z][a-z0-9-]*$") => $"--prefix '{Prefix}' must be lower-case letters, digits and '-', starting with a letter",
        _ => null,
    };
}
