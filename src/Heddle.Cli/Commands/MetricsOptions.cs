using System.CommandLine;
using Heddle.Contracts.Metrics;

namespace Heddle.Cli.Commands;

/// <summary>
/// `--metrics-port` and `--metrics-address` of `heddle agent`, `heddle lb` and `heddle dns`: where the process serves
/// <c>/metrics</c> over plain HTTP. Off unless a port is given (0: the OS chooses, printed at start); loopback unless
/// an address is given, since the labels name services and there is no authentication on it.
/// </summary>
internal sealed class MetricsOptions
{
    private readonly Option<int?> _port = new("--metrics-port") { Description = "Serve Prometheus metrics at http://<--metrics-address>:<port>/metrics (default: off; 0 lets the OS choose)" };
    private readonly Option<string> _address = new("--metrics-address")
    {
        Description = "The address /metrics listens on, with --metrics-port (default 127.0.0.1: it has no authentication and its labels name services)",
        DefaultValueFactory = _ => "127.0.0.1",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(_port);
        command.Options.Add(_address);
    }

    /// <summary>The options given, checked: a bad port or address is a usage error that names the option.</summary>
    public MetricsListenerOptions Options(ParseResult parse)
    {
        var options = new MetricsListenerOptions(parse.GetValue(_port), parse.GetValue(_address)!);
        try
        {
            options.Endpoint();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }

        return options;
    }

    /// <summary>Starts the listener when asked for (null otherwise) and says where it is.</summary>
    public async Task<MetricsListener?> StartAsync(ParseResult parse, System.Diagnostics.Metrics.IMeterFactory meters, CliConsole console, string process, CancellationToken ct)
    {
        if (Options(parse).Endpoint() is not { } endpoint)
        {
            return null;
        }

        MetricsListener listener;
        try
        {
            listener = await MetricsListener.StartAsync(endpoint, meters, ct);
        }
        catch (IOException e)
        {
            throw new Client.CliException($"cannot serve metrics on {endpoint} (--metrics-port, --metrics-address): {e.Message}");
        }

        console.Out.WriteLine($"{process} {Environment.ProcessId}: metrics at {listener.Url}");
        return listener;
    }
}
