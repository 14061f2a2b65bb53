using System.CommandLine;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;
using Heddle.Controller;
using Heddle.Controller.LoadBalancing;
using Heddle.LoadBalancer;
using Heddle.LoadBalancer.Announcing;
using Heddle.Contracts.Logging;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Heddle.Cli.Commands;

/// <summary>The load-balancer options shared by `heddle controller` (which hosts it) and `heddle lb`.</summary>
internal sealed class LbOptionsBinder
{
    private readonly Option<TimeSpan> _drain = Durations.Option("--drain-timeout", "How long connections to a removed instance may go on", TimeSpan.FromSeconds(30));
    private readonly Option<bool> _off = new("--no-lb") { Description = "Do not host the load balancer" };
    private readonly Option<int> _threads = CreateThreads();
    private readonly Option<string> _policy = CreatePolicy();
    private readonly Option<TimeSpan> _idle = Durations.Option("--lb-idle-timeout", "A tcp connection silent both ways this long is closed", TimeSpan.FromMinutes(5));
    private readonly Option<TimeSpan> _head = Durations.Option("--lb-head-timeout", "An http client that began a request head and has not finished it within this gets 408 and is closed", TimeSpan.FromSeconds(30));
    private readonly Option<int> _perVip = Positive("--lb-max-connections", "Open tcp connections one VIP:port may hold; more are reset", 20_000);
    private readonly Option<int> _busyPoll = BusyPoll.Option("--lb-busy-poll-us", "an event loop");
    private readonly Option<int> _perClient = Positive("--lb-max-connections-per-client", "Open tcp connections one client address may hold on one VIP:port", 1_000);

    private static Option<int> Positive(string name, string description, int defaultValue)
    {
        var option = new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1)
            {
                r.AddError($"{name} must be at least 1, not {r.GetValueOrDefault<int>()}");
            }
        });
        return option;
    }

    private static Option<string> CreatePolicy()
    {
        var option = new Option<string>("--http-policy") { Description = "How http endpoints pick an instance: RoundRobin (default) or PowerOfTwoChoices", DefaultValueFactory = _ => "RoundRobin" };
        option.AcceptOnlyFromAmong("RoundRobin", "PowerOfTwoChoices");
        return option;
    }

    private static Option<int> CreateThreads()
    {
        var option = new Option<int>("--lb-threads") { Description = "Event-loop threads for tcp (L4) endpoints", DefaultValueFactory = _ => 1 };
        option.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<int>();
            if (value < 1 || value > 256)
            {
                r.AddError($"--lb-threads must be between 1 and 256, not {value}");
            }
        });
        return option;
    }

    public void AddTo(Command command, bool withOff = true)
    {
        command.Options.Add(_drain);
        command.Options.Add(_threads);
        command.Options.Add(_policy);
        command.Options.Add(_idle);
        command.Options.Add(_head);
        command.Options.Add(_perVip);
        command.Options.Add(_perClient);
        command.Options.Add(_busyPoll);
        if (withOff)
        {
            command.Options.Add(_off);
        }
    }

    public LoadBalancerOptions Options(ParseResult parse) => new()
    {
        DrainTimeout = parse.GetValue(_drain), HttpPolicy = parse.GetValue(_policy)!, L4Threads = parse.GetValue(_threads),
        IdleTimeout = parse.GetValue(_idle), HeadTimeout = parse.GetValue(_head), MaxConnectionsPerVip = parse.GetValue(_perVip), MaxConnectionsPerClient = parse.GetValue(_perClient),
        BusyPoll = TimeSpan.FromMicroseconds(parse.GetValue(_busyPoll)),
    };

    /// <summary>Starts the load balancer fed by the controller in this process (null with --no-lb): a member like any other, heart-beating in-process.</summary>
    public BalancerAgent? StartHosted(ParseResult parse, ControllerHost host, CliConsole console)
    {
        if (parse.GetValue(_off))
        {
            return null;
        }

        var source = host.Services.GetRequiredService<LoadBalancerConfigSource>();
        var registry = host.Services.GetRequiredService<BalancerRegistry>();
        var address = host.ApiUrl.Host.Trim('[', ']');
        var identity = new BalancerIdentity($"controller-{address.Replace(':', '-')}", address, BalancerModes.None, null);
        var agent = new BalancerAgent(new LoadBalancerHost(Options(parse), host.Meters), identity, new InProcessControl(registry), null, null, TimeProvider.System,
            line => console.Error.WriteLine($"heddle lb: {line}"));
        // Applied one at a time, in the order published (a fire-and-forget apply per change could finish out of order).
        var changes = System.Threading.Channels.Channel.CreateUnbounded<LoadBalancerConfig>(new() { SingleReader = true });
        source.Changed += config => changes.Writer.TryWrite(config);
        changes.Writer.TryWrite(source.Current);
        _ = Task.Run(async () =>
        {
            await foreach (var config in changes.Reader.ReadAllAsync())
            {
                try
                {
                    await agent.ApplyAsync(config);
                }
                catch (Exception e)
                {
                    // One configuration that cannot be applied must not stop every later one from being applied.
                    console.Error.WriteLine($"heddle lb: configuration {config.Version} not applied: {e.Message}");
                }
            }
        });
        agent.Start();
        return agent;
    }

    private sealed class InProcessControl(BalancerRegistry registry) : IBalancerControl
    {
        public Task<BalancerLease> HeartbeatAsync(BalancerHeartbeat heartbeat, CancellationToken cancellationToken) => registry.HeartbeatAsync(heartbeat, cancellationToken);

        public Task LeaveAsync(string name, CancellationToken cancellationToken) => registry.LeaveAsync(name, cancellationToken);
    }
}

/// <summary><c>heddle lb --controller URL</c>: the load balancer on a host of its own, fed by the controller's API; <c>heddle lb list</c>.</summary>
internal static class LbCommand
{
    public static Command Create(CliConsole console)
    {
        var controller = new Option<string?>("--controller") { Description = "The controller's API URL, or several comma-separated (the next is followed when one is lost; default: from $HEDDLE_HOME/config.json)" };
        var tokenFile = new Option<string?>("--token-file") { Description = "A file holding an admin API token (default: from $HEDDLE_HOME/config.json)" };
        var caFile = new Option<string?>("--ca-file") { Description = "The cluster CA certificate, PEM, to check the controller with (default: from $HEDDLE_HOME/config.json; the controller writes <state>/ca.crt)" };
        var name = new Option<string?>("--name") { Description = "This balancer's name in the cluster, unique (default: the host name)" };
        var address = new Option<string?>("--address") { Description = "This balancer's address (default: the local address of the route to the controller)" };
        var grace = Durations.Option("--stop-grace", "On stop, how long connections may finish after the VIPs are withdrawn (with --announce)", TimeSpan.FromSeconds(3));
        var lb = new LbOptionsBinder();
        var announce = new AnnounceOptions();
        var metrics = new MetricsOptions();
        var command = new Command("lb", "Run the load balancer on its own, fed by a controller") { controller, tokenFile, caFile, name, address, grace };
        lb.AddTo(command, withOff: false);
        metrics.AddTo(command);
        announce.AddTo(command);
        command.Subcommands.Add(CreateList(console));
        command.SetAction(async (parse, ct) =>
        {
            metrics.Options(parse);
            using var api = ControllerFollower.Connect(parse.GetValue(controller), parse.GetValue(tokenFile), parse.GetValue(caFile));
            var url = api.ApiUrl;
            using var meters = new Heddle.Contracts.Metrics.MeterScope();
            await using var listener = await metrics.StartAsync(parse, meters, console, "lb", ct);
            var here = await AddressAsync(parse.GetValue(address), url, ct);
            var balancerName = parse.GetValue(name) ?? Environment.MachineName;
            var identity = new BalancerIdentity(balancerName, here.ToString(), announce.Mode(parse), announce.Interface(parse, here));
            using var loggers = LoggerFactory.Create(b => b.AddHeddleConsole().SetMinimumLevel(LogLevel.Information));
            var announcer = announce.Create(parse, balancerName, here, loggers);
            if (announcer is not null)
            {
                try
                {
                    await announcer.StartAsync(ct);
                }
                catch (AnnouncerException e)
                {
                    await announcer.DisposeAsync();
                    console.Error.WriteLine($"heddle lb: cannot announce ({identity.Mode}): {e.Message}");
                    return ExitCodes.Invalid;
                }
            }

            var routes = announcer is null ? null : new LocalVipRoutes();
            await using var agent = new BalancerAgent(new LoadBalancerHost(lb.Options(parse), meters), identity, new ApiControl(api), announcer, routes, TimeProvider.System,
                line => console.Error.WriteLine($"heddle lb: {line}"));
            console.Out.WriteLine($"lb {Environment.ProcessId}: {identity.Name} at {identity.Address} ({identity.Mode}{(identity.Interface is null ? string.Empty : $" on {identity.Interface}")}), listeners from {url}");
            agent.Start();
            var copy = Views.LoadBalancerCopy(); // kept across reconnections: a controller that still knows its version sends only what changed
            await ControllerFollower.RunAsync("lb", c => api.FollowLoadBalancerConfigAsync(copy, c), agent.ApplyAsync, console, ct);
            await agent.StopAsync(announcer is null ? TimeSpan.Zero : parse.GetValue(grace));
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The address given, or the local address of this host's route to the controller.</summary>
    private static async Task<System.Net.IPAddress> AddressAsync(string? given, Uri controller, CancellationToken ct)
    {
        if (given is not null)
        {
            return System.Net.IPAddress.TryParse(given, out var parsed) ? parsed : throw new UsageException($"--address '{given}' is not an IP address");
        }

        var resolved = await Heddle.Agent.Node.NodeAddress.ResolveAsync(controller, TimeSpan.FromSeconds(5), ct);
        return Heddle.Agent.Node.NodeAddress.Choose([resolved], out var problems)?.Address
            ?? throw new UsageException($"cannot tell this balancer's address from the route to {controller} ({string.Join("; ", problems)}); give --address");
    }

    private static Command CreateList(CliConsole console)
    {
        var format = CommonOptions.Format();
        var command = new Command("list", "List the load balancers: address, how they announce, state, the VIPs they own and what they cannot open") { format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var balancers = await api.ListBalancersAsync(ct);
            if (!ClusterCommands.Json(console, parse.GetValue(format), balancers))
            {
                BalancerTable.Write(console.Out, balancers);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private sealed class ApiControl(HeddleApiClient api) : IBalancerControl
    {
        public Task<BalancerLease> HeartbeatAsync(BalancerHeartbeat heartbeat, CancellationToken cancellationToken) => api.HeartbeatBalancerAsync(heartbeat, cancellationToken);

        public Task LeaveAsync(string name, CancellationToken cancellationToken) => api.RemoveBalancerAsync(name, cancellationToken);
    }
}

/// <summary>The balancers as a table, for `heddle lb list` and `heddle info`.</summary>
internal static class BalancerTable
{
    public static void Write(TextWriter output, IReadOnlyList<BalancerStatus> balancers)
    {
        if (balancers.Count == 0)
        {
            output.WriteLine("no load balancer has reported");
            return;
        }

        var now = DateTimeOffset.UtcNow;
        var table = new Table("BALANCER", "ADDRESS", "MODE", "STATE", "HEARD", "OWNS", "ANNOUNCER", "PROBLEMS");
        foreach (var b in balancers)
        {
            table.Add(b.Name, b.Address, b.Interface is null ? b.Mode : $"{b.Mode} on {b.Interface}", b.State, $"{Math.Max(0, (now - b.HeardAt).TotalSeconds):0.#} s ago",
                b.Owned.Count == 0 ? "-" : string.Join(",", b.Owned), b.Detail,
                b.Problems.Count == 0 ? "-" : string.Join("; ", b.Problems.Select(p => $"{p.Vip}:{p.Port} {p.Kind}")));
        }

        table.Write(output);
    }
}
