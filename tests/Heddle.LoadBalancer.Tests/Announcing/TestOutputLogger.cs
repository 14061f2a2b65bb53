using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Heddle.LoadBalancer.Tests.Announcing;

/// <summary>A logger that writes to the test's output, each line with the seconds since the test began, the wall clock (to set beside BIRD's log) and a name.</summary>
internal sealed class TestOutputLogger<T>(ITestOutputHelper output, string name, Stopwatch clock) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        try
        {
            output.WriteLine(FormattableString.Invariant($"[{clock.Elapsed.TotalSeconds,7:0.000}] {DateTime.Now:HH:mm:ss.fff} {name} {logLevel}: {formatter(state, exception)}"));
        }
        catch (InvalidOperationException)
        {
            // A line logged after the test ended (gobgpd's last words) has nowhere to go.
        }
    }
}
