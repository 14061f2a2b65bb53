using System.CommandLine;
using Heddle.Cli.Commands;

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
        };

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

        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"heddle: {e.Message}");
            return ExitCodes.Usage;
        }
    }
}

/// <summary>Thrown by a command when its arguments cannot be acted on (a missing file); becomes exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
