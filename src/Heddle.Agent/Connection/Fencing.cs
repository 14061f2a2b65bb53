using Microsoft.Extensions.Logging;

namespace Heddle.Agent.Connection;

/// <summary>
/// An agent that hears nothing from any controller for <c>--fence-after</c> stops its instances: by then the controller
/// has judged the node Down and given them to other nodes, and two copies must not run. Checked every 100 ms on the
/// agent's clock against <see cref="ControllerConnection.SilentSince"/>; it fences once per silence, asks the connection
/// for a new session (the controller sends the goal state afresh when it answers), and unfences when it hears again.
/// </summary>
public sealed partial class Fencing(TimeSpan fenceAfter, TimeProvider time, Func<long> silentSince, Func<int> instances, Func<Task> fence, Action reconnect, ILogger log)
{
    /// <summary>True while this agent has stopped its instances for want of the controller.</summary>
    public bool Fenced { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (fenceAfter <= TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100), time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                await CheckAsync();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One look at the silence: fences when it has lasted <c>fenceAfter</c> and there is something to stop.</summary>
    public async Task CheckAsync()
    {
        var silent = TimeSpan.FromMilliseconds(ControllerConnection.Millis(time) - silentSince());
        if (silent < fenceAfter)
        {
            Fenced = false;
            return;
        }

        var count = instances();
        if (!Fenced && count > 0)
        {
            Fenced = true;
            LogFenced(log, silent.TotalSeconds, fenceAfter, count);
            await fence();
            reconnect();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Fenced: no word from the controller for {Seconds:0.#} s (--fence-after {Limit}); stopping this node's {Count} instance(s), "
        + "which the controller has given to other nodes; they start again when it sends this node's goal state")]
    private static partial void LogFenced(ILogger logger, double seconds, TimeSpan limit, int count);
}
