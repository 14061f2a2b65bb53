using System.CommandLine;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;
using Heddle.Controller;
using Heddle.Controller.LoadBalancing;
using Heddle.LoadBalancer;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Cli.Commands;

/// <summary>The load-balancer options shared by `heddle controller` (which hosts it) and `heddle lb`.</summary>
internal sealed class LbOptionsBinder
{
    private readonly Option<TimeSpan> _drain = Durations.Option("--drain-timeout", "How long connections to a removed instance may go on", TimeSpan.FromSeconds(30));
    private readonly Option<bool> _off = new("--no-lb") { Description = "Do not host the load balancer" };
    private readonly Option<int> _threads = CreateThreads();
    private readonly Option<string> _policy = CreatePolicy();
    private readonly Option<TimeSpan> _idle = Durations.Option("--lb-idle-timeout", "A tcp connection silent both ways this long is closed", TimeSpan.FromMinutes(5));
    private readonly Option<int> _perVip = Positive("--lb-max-connections", "Open tcp connections one VIP:port may hold; more are reset", 20_000);
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
        command.Options.Add(_perVip);
        command.Options.Add(_perClient);
        if (withOff)
        {
            command.Options.Add(_off);
        }
    }

    public LoadBalancerOptions Options(ParseResult parse) => new()
    {
        DrainTimeout = parse.GetValue(_drain), HttpPolicy = parse.GetValue(_policy)!, L4Threads = parse.GetValue(_threads),
        IdleTimeout = parse.GetValue(_idle), MaxConnectionsPerVip = parse.GetValue(_perVip), MaxConnectionsPerClient = parse.GetValue(_perClient),
    };

    /// <summary>Starts the load balancer fed by the controller in this process (null with --no-lb).</summary>
    public LoadBalancerHost? StartHosted(ParseResult parse, ControllerHost host, CliConsole console)
    {
        if (parse.GetValue(_off))
        {
            return null;
        }

        var balancer = new LoadBalancerHost(Options(parse));
        var source = host.Services.GetRequiredService<LoadBalancerConfigSource>();
        var conflicts = host.Services.GetRequiredService<VipConflicts>();
        Task Report(LoadBalancerReport report) => conflicts.ReportAsync(report);

        source.Changed += config => _ = ApplyAsync(balancer, config, Report, console);
        _ = ApplyAsync(balancer, source.Current, Report, console);
        return balancer;
    }

    /// <summary>Applies a configuration, then reports to the controller what could not be opened (every time, so it also learns when all is well).</summary>
    internal static async Task ApplyAsync(LoadBalancerHost balancer, LoadBalancerConfig config, Func<LoadBalancerReport, Task> report, CliConsole console)
    {
        var problems = await balancer.ApplyAsync(config);
        foreach (var problem in problems)
        {
            console.Error.WriteLine($"heddle lb: {problem.Service} {problem.Vip}:{problem.Port}: cannot listen ({problem.Reason})");
        }

        await report(new LoadBalancerReport(Reporter, config.Version, problems));
    }

    /// <summary>This balancer, as its reports name it.</summary>
    internal static string Reporter { get; } = $"{Environment.MachineName}/{Environment.ProcessId}";
}

/// <summary><c>heddle lb --controller URL</c>: the load balancer on a host of its own, fed by the controller's API.</summary>
internal static class LbCommand
{
    public static Command Create(CliConsole console)
    {
        var controller = new Option<string?>("--controller") { Description = "The controller's API URL, or several comma-separated (the next is followed when one is lost; default: from $HEDDLE_HOME/config.json)" };
        var tokenFile = new Option<string?>("--token-file") { Description = "A file holding an admin API token (default: from $HEDDLE_HOME/config.json)" };
        var caFile = new Option<string?>("--ca-file") { Description = "The cluster CA certificate, PEM, to check the controller with (default: from $HEDDLE_HOME/config.json; the controller writes <state>/ca.crt)" };
        var lb = new LbOptionsBinder();
        var command = new Command("lb", "Run the load balancer on its own, fed by a controller") { controller, tokenFile, caFile };
        lb.AddTo(command, withOff: false);
        command.SetAction(async (parse, ct) =>
        {
            using var api = ControllerFollower.Connect(parse.GetValue(controller), parse.GetValue(tokenFile), parse.GetValue(caFile));
            var url = api.ApiUrl;
            await using var balancer = new LoadBalancerHost(lb.Options(parse));
            console.Out.WriteLine($"lb {Environment.ProcessId}: listeners from {url}");
            await ControllerFollower.RunAsync("lb", api.FollowLoadBalancerConfigAsync,
                config => LbOptionsBinder.ApplyAsync(balancer, config, report => api.ReportLoadBalancerAsync(report, ct), console), console, ct);
            return ExitCodes.Ok;
        });
        return command;
    }
}
