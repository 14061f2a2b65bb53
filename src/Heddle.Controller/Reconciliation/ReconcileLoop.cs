using Heddle.Controller.Store;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// Takes service names off the work queue one at a time and reconciles them; a conflict or an error is retried with
/// backoff. Every service is also queued at start and every resync interval, so nothing depends on a missed signal.
/// </summary>
public sealed partial class ReconcileLoop(
    WorkQueue queue, DeploymentReconciler reconciler, IClusterStore store, ControllerOptions options, TimeProvider time, ILogger<ReconcileLoop> logger)
    : BackgroundService
{
    private readonly Dictionary<string, int> _failures = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = ResyncAsync(stoppingToken);
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

            bool done;
            try
            {
                done = reconciler.Reconcile(key);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, key, e);
                done = false;
            }

            if (done)
            {
                _failures.Remove(key);
                continue;
            }

            var attempt = _failures[key] = _failures.GetValueOrDefault(key) + 1;
            var delay = TimeSpan.FromMilliseconds(Math.Min(10_000, 50 * Math.Pow(2, Math.Min(attempt, 10))));
            _ = RequeueAfterAsync(key, delay, stoppingToken);
        }
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

    private async Task RequeueAfterAsync(string key, TimeSpan delay, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(delay, time, stoppingToken);
            queue.Add(key);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reconciling {Service} failed; retrying with backoff")]
    private static partial void LogFailed(ILogger logger, string service, Exception exception);
}
