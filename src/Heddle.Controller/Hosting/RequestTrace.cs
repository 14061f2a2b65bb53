using System.Diagnostics;

namespace Heddle.Controller.Hosting;

/// <summary>
/// The steps of one API call, for <see cref="SlowRequests"/> to tell when the call was slow: code on the call's path
/// marks where a step ends (<see cref="Mark"/>), and the warning says how long each took ("waited its turn 1800 ms,
/// committed 12 ms"), as Kubernetes' API server traces its slow requests. Outside a call, marking does nothing.
/// </summary>
public sealed class RequestTrace
{
    private static readonly AsyncLocal<RequestTrace?> Current = new();

    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly List<(string Step, long At)> _steps = [];

    /// <summary>Starts a trace for the call running on this async flow.</summary>
    internal static RequestTrace Begin() => Current.Value = new RequestTrace();

    /// <summary>The step that ends now, named as a sentence fragment ("waited its turn").</summary>
    public static void Mark(string step) => Mark(step, Stopwatch.GetTimestamp());

    /// <summary>The step that ended at <paramref name="at"/> (a <see cref="Stopwatch"/> timestamp, not before the last step marked).</summary>
    public static void Mark(string step, long at)
    {
        if (Current.Value is { } trace)
        {
            lock (trace._steps)
            {
                trace._steps.Add((step, at));
            }
        }
    }

    /// <summary>The steps with how long each took, or empty if none was marked.</summary>
    public override string ToString()
    {
        lock (_steps)
        {
            var previous = _started;
            var parts = new List<string>(_steps.Count);
            foreach (var (step, at) in _steps)
            {
                parts.Add($"{step} {Stopwatch.GetElapsedTime(previous, at).TotalMilliseconds:0} ms");
                previous = at;
            }

            return string.Join(", ", parts);
        }
    }
}
