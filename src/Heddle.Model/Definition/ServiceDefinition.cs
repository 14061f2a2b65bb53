using Heddle.Model.Diagnostics;

namespace Heddle.Model.Definition;

/// <summary>The content of service.yaml: fixed for a package.</summary>
public sealed record ServiceDefinition
{
    public const int DefaultUpgradeDomains = 5;

    public required string Name { get; init; }

    public int UpgradeDomains { get; init; } = DefaultUpgradeDomains;

    public required IReadOnlyList<RoleDefinition> Roles { get; init; }

    /// <summary>The role of that name, or null. A loop, not LINQ: placement asks it for each instance of each pass.</summary>
    public RoleDefinition? FindRole(string name)
    {
        for (var i = 0; i < Roles.Count; i++)
        {
            if (Roles[i].Name == name)
            {
                return Roles[i];
            }
        }

        return null;
    }
}

public enum RoleDriver
{
    Process,
    Container,
}

public sealed record RoleDefinition
{
    public required string Name { get; init; }

    public RoleDriver Driver { get; init; } = RoleDriver.Process;

    /// <summary>The base image, for <see cref="RoleDriver.Container"/> roles only.</summary>
    public string? Image { get; init; }

    public required EntryPoint EntryPoint { get; init; }

    public RoleSize Size { get; init; } = RoleSize.Default;

    public IReadOnlyList<EndpointDefinition> Endpoints { get; init; } = [];

    /// <summary>Null means the default readiness rule: the first endpoint accepts a TCP connection, or the process runs.</summary>
    public ProbeDefinition? Probe { get; init; }

    public IReadOnlyList<SettingDeclaration> Settings { get; init; } = [];

    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<StartupTask> Startup { get; init; } = [];

    /// <summary>Node labels every instance's node must carry (<c>constraints: { ssd: "true" }</c>).</summary>
    public IReadOnlyDictionary<string, string> Constraints { get; init; } = new Dictionary<string, string>();

    /// <summary>What a settings-only change does to a running instance: restart it (default), or rewrite heddle-instance.json and send SIGHUP.</summary>
    public SettingsChangeAction OnSettingsChange { get; init; } = SettingsChangeAction.Restart;

    public SourceLocation Location { get; init; }
}

public enum SettingsChangeAction
{
    Restart,
    Signal,
}

public sealed record EntryPoint(string Command, IReadOnlyList<string> Args);

public enum EndpointKind
{
    /// <summary>Public: a port on the service VIP, through the load balancer.</summary>
    Input,

    /// <summary>Reachable by other instances only.</summary>
    Internal,
}

public enum EndpointProtocol
{
    Http,
    Tcp,
    Udp,
}

public sealed record EndpointDefinition(string Name, EndpointKind Kind, EndpointProtocol Protocol, int? Port);

public enum ProbeKind
{
    Http,
    Tcp,
}

public sealed record ProbeDefinition
{
    public const int DefaultIntervalSeconds = 5;
    public const int DefaultTimeoutSeconds = 2;
    public const int DefaultUnhealthyThreshold = 3;

    public required ProbeKind Kind { get; init; }

    public required string Endpoint { get; init; }

    /// <summary>The request path for <see cref="ProbeKind.Http"/> probes.</summary>
    public string? Path { get; init; }

    public int IntervalSeconds { get; init; } = DefaultIntervalSeconds;

    public int TimeoutSeconds { get; init; } = DefaultTimeoutSeconds;

    public int UnhealthyThreshold { get; init; } = DefaultUnhealthyThreshold;
}

public sealed record SettingDeclaration(string Name, SourceLocation Location);

public enum StartupTaskType
{
    /// <summary>Runs to completion before the entry point starts; a non-zero exit faults the instance.</summary>
    Simple,

    /// <summary>Started before the entry point and left running beside it.</summary>
    Background,
}

public sealed record StartupTask(string Command, IReadOnlyList<string> Args, StartupTaskType Type);
