using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Heddle.Testing;

/// <summary>
/// Keeps what processes of a test log (agents of a <see cref="TestCluster"/>), one line per entry with its time, source
/// and level, so a test can assert what a user would read in the log, and a failure can show what each one said.
/// </summary>
public sealed class LogCapture
{
    private readonly ConcurrentQueue<string> _lines = new();

    /// <summary>A logger factory whose lines are kept here, each prefixed with <paramref name="source"/>.</summary>
    public ILoggerFactory For(string source, LogLevel minimum = LogLevel.Information) =>
        LoggerFactory.Create(b => b.SetMinimumLevel(minimum).AddProvider(new Provider(this, source)));

    /// <summary>Adds a provider keeping lines here to <paramref name="logging"/> (a controller's, say), at Warning and above and its leadership at Information.</summary>
    public void AddTo(ILoggingBuilder logging, string source)
    {
        logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Heddle.Controller.Leadership", LogLevel.Information).AddProvider(new Provider(this, source));
    }

    public IReadOnlyList<string> Lines => [.. _lines];

    public IReadOnlyList<string> LinesOf(string source) => [.. _lines.Where(l => l.Contains($" {source} ", StringComparison.Ordinal))];

    public override string ToString() => string.Join('\n', _lines);

    private sealed class Provider(LogCapture capture, string source) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(capture, source, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(LogCapture capture, string source, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            capture._lines.Enqueue($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {source} {logLevel} {category}: {formatter(state, exception)}{(exception is null ? string.Empty : " " + exception.Message)}");
        }
    }
}
