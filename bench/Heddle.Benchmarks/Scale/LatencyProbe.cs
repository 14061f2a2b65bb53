using System.Diagnostics;

namespace Heddle.Benchmarks.Scale;

/// <summary>Latencies of API calls by kind (status, instances, deploy), for p50/p99 over the run.</summary>
internal sealed class LatencyProbe
{
    private readonly Dictionary<string, List<double>> _millis = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public async Task<T> TimeAsync<T>(string kind, Func<Task<T>> call)
    {
        var start = Stopwatch.GetTimestamp();
        var result = await call();
        var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        lock (_lock)
        {
            (_millis.TryGetValue(kind, out var list) ? list : _millis[kind] = []).Add(ms);
        }

        return result;
    }

    public (double P50, double P99, int Count) Percentiles(string kind)
    {
        lock (_lock)
        {
            if (!_millis.TryGetValue(kind, out var list) || list.Count == 0)
            {
                return (double.NaN, double.NaN, 0);
            }

            var sorted = list.Order().ToList();
            return (sorted[(int)(0.50 * (sorted.Count - 1))], sorted[(int)Math.Ceiling(0.99 * (sorted.Count - 1))], sorted.Count);
        }
    }

    /// <summary>Every few hundred ms during the run: one service's status and its instances, as a user would look.</summary>
    public async Task ProbeAsync(Heddle.Contracts.Api.HeddleApiClient api, Func<string?> service, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (service() is { } name)
                {
                    await TimeAsync("status", () => api.GetServiceAsync(name, cancellationToken));
                    await TimeAsync("instances", () => api.ListInstancesAsync(name, cancellationToken));
                }

                await Task.Delay(300, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or Heddle.Contracts.Api.HeddleApiException)
            {
                // A call that failed is not a latency; the run's other figures say what went wrong.
            }
        }
    }
}
