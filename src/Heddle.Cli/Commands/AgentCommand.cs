using System.CommandLine;
using System.Net;
using Heddle.Agent;
using Heddle.Agent.Node;
using Heddle.Contracts.Logging;
using Microsoft.Extensions.Logging;

namespace Heddle.Cli.Commands;

/// <summary><c>heddle agent</c>: the host agent of one node, until SIGTERM.</summary>
internal static class AgentCommand
{
    public const string JoinVariable = "HEDDLE_JOIN";

    /// <summary>
    /// A fixed log port by default, so that an operator can open it in a host's firewall once (a port the OS chose would
    /// change with every agent start); `heddle up` and tests, which run several agents on one host, pass 0.
    /// </summary>
    public const int DefaultLogPort = 7003;

    public static Command Create(CliConsole console)
    {
        var agentUrl = new Option<string>("--controller") { Description = "The controller's agent endpoint, e.g. https://10.0.0.1:7001; several, comma-separated, for a replicated controller (the next is tried when one does not answer)", Required = true };
        var token = new Option<string?>("--join") { Description = "A join string from 'heddle token create --join', needed until the node has its certificate (visible to every process on the host: prefer $HEDDLE_JOIN or --join-file)" };
        var tokenFile = new Option<string?>("--join-file") { Description = "A file holding the join string" };
        var name = new Option<string>("--name") { Description = "Node name (default: the host name, lower-cased)", DefaultValueFactory = _ => Environment.MachineName.ToLowerInvariant() };
        var address = new Option<string?>("--address")
        {
            Description = "The address this node's instances and its log server listen on, which the controller and clients must reach "
                + "(default: the local address of this host's route to the first controller with a route; a loopback address only with a controller on loopback)",
        };
        var logPort = new Option<int>("--log-port")
        {
            Description = "The port the agent serves instance logs on, at --address; the controller connects to it when the node enrols (default 7003; 0 lets the OS choose)",
            DefaultValueFactory = _ => DefaultLogPort,
        };
        var faultDomain = new Option<string>("--fault-domain") { Description = "The node's fault domain (default fd1)", DefaultValueFactory = _ => "fd1" };
        var labels = new Option<string[]>("--label") { Description = "A node label, key=value (repeatable)", AllowMultipleArgumentsPerToken = false };
        var state = new Option<string>("--state") { Description = "State directory: package cache, instances, logs", Required = true };
        var cores = new Option<int?>("--cores") { Description = "Claim this many physical cores (their CPUs map onto the machine's); default: the machine's topology" };
        var threads = new Option<int>("--threads-per-core") { Description = "Threads per claimed core (default 1)", DefaultValueFactory = _ => 1 };
        var memory = new Option<int?>("--memory-mib") { Description = "Claim this much memory (default: the machine's)" };
        var ports = new Option<string>("--port-range") { Description = "Ports for instance endpoints (default 20000-29999)", DefaultValueFactory = _ => "20000-29999" };
        var heartbeat = Durations.Option("--heartbeat", "How often the agent tells the controller it is alive", TimeSpan.FromSeconds(1));
        var backoff = Durations.Option("--restart-backoff", "First delay before restarting a crashed instance; doubles per crash in a row, up to 5 min", TimeSpan.FromSeconds(1));
        var stopOnExit = new Option<bool>("--stop-instances-on-exit") { Description = "Stop this node's instances when the agent exits (default: leave them running for the next agent)" };
        var noCgroups = new Option<bool>("--no-cgroups") { Description = "Do not place instances in cpuset/memory/pids cgroups (affinity only)" };
        var noContainers = new Option<bool>("--no-containers") { Description = "Do not offer the container driver (roles with driver: container are then placed elsewhere)" };
        var uids = new Option<string>("--uid-range") { Description = "As root, each service's instances run as a uid of their own from this range (default 200000-265535)", DefaultValueFactory = _ => "200000-265535" };
        var retention = Durations.Option("--log-retention", "How long the logs of an instance that no longer exists are kept", TimeSpan.FromHours(24));
        var fence = Durations.Option("--fence-after", "Stop this node's instances after hearing nothing from the controller this long (its node timeout; 0s: never)", TimeSpan.FromSeconds(10));
        var hostImage = new Option<string?>("--host-image") { Description = "The host image this machine booted, shown by 'heddle nodes' (a host image's init passes its own name)" };
        var metrics = new MetricsOptions();
        var command = new Command("agent", "Run the host agent of one node")
        {
            agentUrl, token, tokenFile, name, address, logPort, faultDomain, labels, state, cores, threads, memory, ports, heartbeat, backoff, stopOnExit, noCgroups, noContainers, uids, retention, fence,
            hostImage,
        };
        metrics.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            // The environment is readable only by the agent's own user and root; a command line, by everyone on the host.
            var join = parse.GetValue(token) ?? (parse.GetValue(tokenFile) is { } file ? File.ReadAllText(CommonOptions.RequireExistingFile(file, "join file")).Trim() : null)
                ?? (Environment.GetEnvironmentVariable(JoinVariable) is { Length: > 0 } variable ? variable : null);
            if (join is not null)
            {
                try
                {
                    Heddle.Contracts.Trust.JoinString.Parse(join);
                }
                catch (FormatException e)
                {
                    throw new UsageException($"the join string is not valid: {e.Message}");
                }
            }
            var controllers = parse.GetValue(agentUrl)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(c => Uri.TryCreate(c, UriKind.Absolute, out var url) && url.Scheme == Uri.UriSchemeHttps ? url : throw new UsageException($"--controller '{c}' is not an https:// URL of a controller's agent port"))
                .ToArray();
            if (controllers.Length == 0)
            {
                throw new UsageException("--controller names no controller");
            }

            var range = parse.GetValue(ports)!.Split('-');
            if (range.Length != 2 || !int.TryParse(range[0], out var from) || !int.TryParse(range[1], out var to) || from < 1 || to > 65535 || from > to)
            {
                throw new UsageException($"--port-range '{parse.GetValue(ports)}' is not a range like 20000-29999");
            }

            if (parse.GetValue(logPort) is < 0 or > 65535)
            {
                throw new UsageException($"--log-port {parse.GetValue(logPort)} is not a port (0 lets the OS choose)");
            }

            var nodeAddress = await NodeAddressAsync(console, parse.GetValue(address), controllers, ct);
            var uidRange = Heddle.Contracts.UidRange.Parse(parse.GetValue(uids)!, out var uidProblem) ?? throw new UsageException($"--uid-range {uidProblem}");

            var labelMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var label in parse.GetValue(labels) ?? [])
            {
                var eq = label.IndexOf('=');
                if (eq <= 0)
                {
                    throw new UsageException($"--label '{label}' is not key=value");
                }

                labelMap[label[..eq]] = label[(eq + 1)..];
            }

            var options = new AgentOptions
            {
                ControllerAgentUrl = controllers[0],
                OtherControllerUrls = controllers[1..],
                Join = join,
                NodeName = parse.GetValue(name)!,
                Address = nodeAddress.ToString(),
                LogPort = parse.GetValue(logPort),
                FaultDomain = parse.GetValue(faultDomain)!,
                Labels = labelMap,
                HostImage = parse.GetValue(hostImage) is { Length: > 0 } image ? image : null,
                StateDirectory = Path.GetFullPath(parse.GetValue(state)!),
                ClaimCores = parse.GetValue(cores),
                ClaimThreadsPerCore = parse.GetValue(threads),
                ClaimMemoryMiB = parse.GetValue(memory),
                PortRangeStart = from,
                PortRangeEnd = to,
                HeartbeatInterval = parse.GetValue(heartbeat),
                RestartBackoff = parse.GetValue(backoff),
                UseCgroups = !parse.GetValue(noCgroups),
                UseContainers = !parse.GetValue(noContainers),
                FenceAfter = parse.GetValue(fence),
                UidRange = uidRange,
                LogRetention = parse.GetValue(retention),
                Metrics = metrics.Options(parse),
            };
            using var loggers = LoggerFactory.Create(b => b.AddHeddleConsole().SetMinimumLevel(LogLevel.Information));
            AgentHost agentHost;
            try
            {
                agentHost = await AgentHost.StartAsync(options, loggers, cancellationToken: ct);
            }
            catch (InvalidOperationException e)
            {
                throw new Client.CliException(e.Message);
            }
            catch (Grpc.Core.RpcException e)
            {
                throw new Client.CliException($"the controller refused to enrol node {options.NodeName}: {e.Status.Detail}");
            }

            await using var agent = agentHost;
            agent.StopInstancesOnExit = parse.GetValue(stopOnExit);
            var cpus = agent.Topology.Cores.Sum(c => c.Count);
            var mapping = agent.Topology.IsClaimed ? $" (claimed; pinned onto the machine's {Environment.ProcessorCount} CPUs)" : string.Empty;
            var isolation = agent.Isolation;
            console.Out.WriteLine($"agent {Environment.ProcessId}: node {options.NodeName} at {options.Address}, fault domain {options.FaultDomain}, {cpus} CPUs{mapping}, {isolation}, logs at {agent.LogUrl}{(agent.MetricsUrl is { } m ? $", metrics at {m}" : string.Empty)}");
            if (agent.Supervisor.UnclaimedCount > 0)
            {
                console.Out.WriteLine($"found {agent.Supervisor.UnclaimedCount} instance(s) still running from the previous agent; they are adopted when the goal state still holds them");
            }

            await ControllerCommand.WaitForStop(ct);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>
    /// The node's address: the one given, or the local address of the route to the first controller with one (said on
    /// the console, with why); a loopback address only when every controller is on loopback too.
    /// </summary>
    private static async Task<IPAddress> NodeAddressAsync(CliConsole console, string? given, Uri[] controllers, CancellationToken ct)
    {
        IPAddress? chosen = null;
        if (given is not null && !IPAddress.TryParse(given, out chosen))
        {
            throw new UsageException($"--address '{given}' is not an IP address");
        }

        var resolved = new List<NodeAddress.ControllerAddresses>();
        foreach (var controller in controllers)
        {
            resolved.Add(await NodeAddress.ResolveAsync(controller, TimeSpan.FromSeconds(5), ct));
        }

        if (chosen is null)
        {
            var choice = NodeAddress.Choose(resolved, out var problems)
                ?? throw new UsageException($"cannot work out this node's address: no route to any controller ({string.Join("; ", problems)}); give --address");
            chosen = choice.Address;
            console.Out.WriteLine($"address {chosen}: {choice.Why}");
        }

        if (NodeAddress.LoopbackRefusal(chosen, resolved) is { } refusal)
        {
            throw new UsageException(refusal);
        }

        return chosen;
    }
}