using System.CommandLine;
using Heddle.Agent.Hollow;
using Heddle.Contracts.Logging;
using Microsoft.Extensions.Logging;

namespace Heddle.Cli.Commands;

/// <summary>
/// <c>heddle hollow</c>: N simulated nodes in one process, each the real agent (enrolment, stream, supervisor, runners)
/// with a driver that starts nothing, for measuring the controller at scale. Prints the nodes and instances periodically.
/// </summary>
internal static class HollowCommand
{
    public static Command Create(CliConsole console)
    {
        var controllers = new Option<string>("--controller") { Description = "The controllers' agent endpoints, comma-separated (e.g. https://127.0.0.1:7001)", Required = true };
        var join = new Option<string?>("--join") { Description = "A join string from 'heddle token create --join' allowing at least --nodes uses (else $HEDDLE_JOIN)" };
        var nodes = new Option<int>("--nodes") { Description = "How many hollow nodes", Required = true };
        var cores = new Option<int>("--cores") { Description = "Cores each node claims (default 32)", DefaultValueFactory = _ => 32 };
        var memory = new Option<int?>("--memory-mib") { Description = "Memory each node claims (default 8 GiB per core)" };
        var faultDomains = new Option<int>("--fault-domains") { Description = "Nodes are spread over this many fault domains, fd1..fdN (default 20)", DefaultValueFactory = _ => 20 };
        var prefix = new Option<string>("--prefix") { Description = "Node names are <prefix>1..<prefix>N (default h)", DefaultValueFactory = _ => "h" };
        var subnet = new Option<int>("--subnet") { Description = "Node i listens at 127.<subnet>.(i/250).(i%250+1) (default 128)", DefaultValueFactory = _ => 128 };
        var readyAfter = Durations.Option("--ready-after", "How long a hollow instance takes from Starting to Ready", TimeSpan.Zero);
        var heartbeat = Durations.Option("--heartbeat", "How often each node tells the controller it is alive", TimeSpan.FromSeconds(1));
        var fence = Durations.Option("--fence-after", "Each node's fencing (0s: off, because 10,000 agents polling their silence 10 times a second cost this process a core)", TimeSpan.Zero);
        var every = Durations.Option("--print-every", "How often the nodes and instances are printed", TimeSpan.FromSeconds(5));
        var concurrency = new Option<int>("--start-concurrency") { Description = "How many nodes enrol at once (default 32)", DefaultValueFactory = _ => 32 };
        var state = new Option<string?>("--state") { Description = "Folder for the nodes' certificates and the shared package cache (default: a new temporary folder); removed at exit" };
        var command = new Command("hollow", "Run many simulated nodes (the real agent with a driver that starts nothing) in one process, for scale tests")
        {
            controllers, join, nodes, cores, memory, faultDomains, prefix, subnet, readyAfter, heartbeat, fence, every, concurrency, state,
        };
        command.SetAction(async (parse, ct) =>
        {
            var urls = parse.GetValue(controllers)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(c => Uri.TryCreate(c, UriKind.Absolute, out var url) && url.Scheme == Uri.UriSchemeHttps ? url : throw new UsageException($"--controller '{c}' is not an https:// URL of a controller's agent port"))
                .ToArray();
            var joinString = parse.GetValue(join) ?? (Environment.GetEnvironmentVariable(AgentCommand.JoinVariable) is { Length: > 0 } variable ? variable : null)
                ?? throw new UsageException($"give a join string: --join or ${AgentCommand.JoinVariable}");
            try
            {
                Heddle.Contracts.Trust.JoinString.Parse(joinString);
            }
            catch (FormatException e)
            {
                throw new UsageException($"the join string is not valid: {e.Message}");
            }

            if (parse.GetValue(every) <= TimeSpan.Zero)
            {
                throw new UsageException("--print-every must be more than 0s");
            }

            if (parse.GetValue(concurrency) < 1)
            {
                throw new UsageException($"--start-concurrency {parse.GetValue(concurrency)} is not at least 1");
            }

            var options = new HollowOptions
            {
                Controllers = urls,
                Join = joinString,
                Nodes = parse.GetValue(nodes),
                CoresPerNode = parse.GetValue(cores),
                MemoryMiB = parse.GetValue(memory),
                FaultDomains = parse.GetValue(faultDomains),
                Prefix = parse.GetValue(prefix)!,
                Subnet = parse.GetValue(subnet),
                ReadyAfter = parse.GetValue(readyAfter),
                HeartbeatInterval = parse.GetValue(heartbeat),
                FenceAfter = parse.GetValue(fence),
                StartConcurrency = parse.GetValue(concurrency),
                StateDirectory = Path.GetFullPath(parse.GetValue(state) ?? Path.Combine(Path.GetTempPath(), $"heddle-hollow-{Environment.ProcessId}")),
            };
            if (options.Problem() is { } problem)
            {
                throw new UsageException(problem);
            }

            // Warnings only: ten thousand agents saying they connected would drown what matters.
            using var loggers = LoggerFactory.Create(b => b.AddHeddleConsole().SetMinimumLevel(LogLevel.Warning));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var lastShown = 0L;
            HollowNodes hollow;
            try
            {
                hollow = await HollowNodes.StartAsync(options, loggers, started: n =>
                {
                    var now = clock.ElapsedMilliseconds;
                    if (n == options.Nodes || now - Interlocked.Read(ref lastShown) >= parse.GetValue(every).TotalMilliseconds)
                    {
                        Interlocked.Exchange(ref lastShown, now);
                        console.Out.WriteLine($"hollow {Environment.ProcessId}: {n}/{options.Nodes} nodes enrolled and started in {clock.Elapsed.TotalSeconds:0.0} s");
                    }
                }, cancellationToken: ct);
            }
            catch (InvalidOperationException e)
            {
                throw new Client.CliException(e.Message);
            }

            await using (hollow)
            {
                console.Out.WriteLine($"hollow {Environment.ProcessId}: {options.Nodes} nodes {options.NodeName(0)}..{options.NodeName(options.Nodes - 1)} at {options.Address(0)}..{options.Address(options.Nodes - 1)}, "
                    + $"{options.CoresPerNode} cores each, {options.FaultDomains} fault domains, ready after {Durations.Format(options.ReadyAfter)}; state in {options.StateDirectory}");
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                // On a thread of its own: the console's reader reads synchronously even when asked to read asynchronously.
                _ = Console.IsInputRedirected ? Task.Run(() => ReadCommandsAsync(console, hollow, stop.Token), CancellationToken.None) : Task.CompletedTask;
                using var timer = new PeriodicTimer(parse.GetValue(every));
                try
                {
                    do
                    {
                        console.Out.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss} {hollow.Counts()}");
                    }
                    while (await timer.WaitForNextTickAsync(ct));
                }
                catch (OperationCanceledException)
                {
                }

                // Not awaited: a read from the console does not end on cancellation, and the process is exiting anyway.
                await stop.CancelAsync();
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>
    /// Lines on stdin (a benchmark drives it so): `drop N` stops the first N nodes still running as machines that die do
    /// (no word to the controller; their instances move after the node timeout). Anything else is refused with why.
    /// </summary>
    private static async Task ReadCommandsAsync(CliConsole console, HollowNodes hollow, CancellationToken cancellationToken)
    {
        try
        {
            while (await Console.In.ReadLineAsync(cancellationToken) is { } line)
            {
                var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (words is ["drop", var text] && int.TryParse(text, out var count) && count > 0)
                {
                    var dropped = new List<string>();
                    for (var i = 0; i < hollow.Options.Nodes && dropped.Count < count; i++)
                    {
                        if (await hollow.DropAsync(i))
                        {
                            dropped.Add(hollow.Options.NodeName(i));
                        }
                    }

                    console.Out.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss} dropped {dropped.Count} node(s): {string.Join(' ', dropped)}");
                }
                else if (words.Length > 0)
                {
                    console.Error.WriteLine($"heddle hollow: '{line}' is not a command; the one command is 'drop N' (N a positive number of nodes)");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
