using Heddle.Controller.Store;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// Takes service names off the work queue and reconciles them, <see cref="ControllerOptions.ReconcileWorkers"/> at once
/// (never one service twice at once: the queue holds it back; their planning takes turns, their commits overlap); a
/// conflict or an error is retried with backoff. Every service is also queued at start and every resync interval, so
/// nothing depends on a missed signal.
/// </summary>
public sealed partial class ReconcileLoop(
    WorkQueue queue, DeploymentReconciler reconciler, IClusterStore store, ControllerOptions options, TimeProvider time, ILogger<ReconcileLoop> logger,
    Metrics.ControllerMetrics metrics)
{
    private readonly Dictionary<string, int> _failures = [];
    private readonly Dictionary<string, DateTimeOffset> _scheduled = [];
    private readonly Lock _lock = new();

    /// <summary>Reconciles until the token is cancelled (this controller stops leading, or stops).</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        _ = ResyncAsync(stoppingToken);
        await Task.WhenAll(Enumerable.Range(0, Math.Max(1, options.ReconcileWorkers)).Select(_ => Task.Run(() => WorkAsync(stoppingToken), CancellationToken.None)));
    }

    private async Task WorkAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            string key;
            try
            {
                key = await queue.TakeAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                await PassAsync(key, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            finally
            {
                queue.Done(key);
            }
        }
    }

    private async Task PassAsync(string key, CancellationToken stoppingToken)
    {
        ReconcileResult result;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            result = await reconciler.ReconcileAsync(key, stoppingToken);
            metrics.Pass(result.Conflict ? "conflict" : result.RequeueAfter is null ? "done" : "requeue", System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogFailed(logger, key, e);
            metrics.Pass("error", System.Diagnostics.Stopwatch.GetElapsedTime(started));
            result = ReconcileResult.Retry;
        }

        if (!result.Conflict)
        {
            lock (_lock)
            {
                _failures.Remove(key);
            }

            if (result.RequeueAfter is { } after)
            {
                Schedule(key, after, stoppingToken);
            }

            return;
        }

        int attempt;
        lock (_lock)
        {
            attempt = _failures[key] = _failures.GetValueOrDefault(key) + 1;
        }

        Schedule(key, TimeSpan.FromMilliseconds(Math.Min(10_000, 50 * Math.Pow(2, Math.Min(attempt, 10)))), stoppingToken);
    }

    /// <summary>Queues the key again after a delay; one timer per key, the soonest asked for (later requests are covered by it).</summary>
    private void Schedule(string key, TimeSpan delay, CancellationToken stoppingToken)
    {
        var due = time.GetUtcNow() + delay;
        lock (_lock)
        {
            if (_scheduled.TryGetValue(key, out var existing) && existing <= due)
            {
                return;
            }

            _scheduled[key] = due;
        }

        _ = RequeueAfterAsync(key, due, delay, stoppingToken);
    }

    private async Task ResyncAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.ResyncInterval, time);
        do
        {
            foreach (var service in store.ListServices())
            {
                queue.Add(service.Name);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private async Task RequeueAfterAsync(string key, DateTimeOffset due, TimeSpan delay, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(delay, time, stoppingToken);
            lock (_lock)
            {
                if (_scheduled.TryGetValue(key, out var current) && current == due)
                {
                    _scheduled.Remove(key);
                }
            }

            queue.Add(key);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reconciling {Service} failed; retrying with backoff")]
    private static partial void LogFailed(ILogger logger, string service, Exception exception);
}
