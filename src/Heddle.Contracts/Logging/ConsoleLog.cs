using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Heddle.Contracts.Logging;

/// <summary>
/// How every long-running heddle process (controller, agent, dns, lb) logs to its console: one line per entry, led by
/// the UTC time to the millisecond, so the logs of processes on different hosts can be read side by side.
/// </summary>
public static class ConsoleLog
{
    /// <summary>What leads each line: 2026-12-04T10:15:30.123Z.</summary>
    public const string TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";

    public static ILoggingBuilder AddHeddleConsole(this ILoggingBuilder builder) => builder.AddSimpleConsole(Configure);

    public static void Configure(SimpleConsoleFormatterOptions options)
    {
        options.SingleLine = true;
        options.TimestampFormat = TimestampFormat;
        options.UseUtcTimestamp = true;
    }
}
