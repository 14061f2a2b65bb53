using System.CommandLine;
using Heddle.Cli.Client;
using Heddle.Cli.Commands;
using Heddle.Contracts.Api;

namespace Heddle.Cli;

/// <summary>Builds the command tree and maps parse errors to exit code 2.</summary>
public static class HeddleCli
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var console = new CliConsole(stdout, stderr);
        var root = new RootCommand("Heddle: a fabric controller for your own Linux machines.")
        {
            ValidateCommand.Create(console),
            PackCommand.Create(console),
            InspectCommand.Create(console),
            SimulateCommand.Create(console),
            ControllerCommand.Create(console),
            AgentCommand.Create(console),
            HollowCommand.Create(console),
            UpCommand.Create(console),
            DnsCommand.Create(console),
            LbCommand.Create(console),
            ImageCommands.Create(console),
            TokenCommands.Create(console),
            QuotaCommands.Create(console),
            MachineCommands.Create(console),
            HostImageCommands.Create(console),
            BootCommand.Create(console),
            LoginCommand.Create(console),
            CaCommands.Create(console),
        };
        var token = new Option<string?>("--token") { Description = $"The API token to use (else ${ClientConfig.TokenVariable}, else the client configuration's)", Recursive = true };
        root.Options.Add(token);
        var timeout = Durations.Option("--request-timeout", "How long a command waits to connect to each controller and for its answer (a followed stream: until it starts)",
            ClientConfig.DefaultTimeout);
        timeout.Recursive = true;
        root.Options.Add(timeout);
        foreach (var command in DeployCommands.Create(console).Concat(RevisionCommands.Create(console)).Concat(ClusterCommands.Create(console)))
        {
            root.Subcommands.Add(command);
        }

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                stderr.WriteLine($"heddle: {error.Message}");
            }

            stderr.WriteLine("Run 'heddle --help' (or 'heddle <command> --help') for usage.");
            return ExitCodes.Usage;
        }

        ClientConfig.TokenOption = parse.GetValue(token);
        ClientConfig.Timeout = parse.GetValue(timeout);
        if (ClientConfig.Timeout <= TimeSpan.Zero)
        {
            stderr.WriteLine("heddle: --request-timeout must be more than 0s");
            return ExitCodes.Usage;
        }

        try
        {
            // Teardown (`up` stopping its agents and their instances) may take a while after Ctrl-C or SIGTERM.
            return parse.Invoke(new InvocationConfiguration
            {
                Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = TimeSpan.FromSeconds(90),
            });
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"heddle: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (CliException e)
        {
            stderr.WriteLine($"heddle: {e.Message}");
            foreach (var detail in e.Details)
            {
                stderr.WriteLine($"  {detail}");
            }

            return e.ExitCode;
        }
        catch (HeddleApiException e)
        {
            stderr.WriteLine($"heddle: {e.Message}");
            foreach (var detail in e.Errors)
            {
                stderr.WriteLine($"  {detail}");
            }

            return ExitCodes.Invalid;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
        {
            stderr.WriteLine($"heddle: {e.Message}");
            return ExitCodes.Invalid;
        }
    }
}

/// <summary>Thrown by a command when its arguments cannot be acted on (a missing file); becomes exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
