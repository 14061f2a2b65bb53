using System.Security.Cryptography.X509Certificates;
using Heddle.Contracts.Trust;
using Heddle.Testing;

namespace Heddle.Benchmarks.Scale;

/// <summary>
/// How long the controllers were paused for garbage collection, and how many full (gen2) collections they made, over a
/// phase: read from each controller's <c>/metrics</c> (the runtime's own meter) when the phase begins and ends. A
/// controller paused for GC answers nothing and reconciles nothing, so this is time the figures above lost.
/// </summary>
internal sealed class ControllerGc(IReadOnlyList<Uri> apiUrls, string token, X509Certificate2 ca) : IDisposable
{
    private readonly HttpClient _http = new(ClusterTrust.Handler(ca)) { Timeout = TimeSpan.FromSeconds(30) };
    private (double Pause, double Gen2) _start;

    public async Task ResetAsync() => _start = await ReadAsync();

    /// <summary>Since the last <see cref="ResetAsync"/>: seconds paused and full collections, the controllers summed; names them in <paramref name="figures"/>.</summary>
    public async Task TakeAsync(Dictionary<string, object> figures, string phase)
    {
        var now = await ReadAsync();
        figures[$"{phase}_gc_pause_s"] = now.Pause - _start.Pause;
        figures[$"{phase}_gc_gen2"] = now.Gen2 - _start.Gen2;
    }

    private async Task<(double Pause, double Gen2)> ReadAsync()
    {
        var scrapes = await Task.WhenAll(apiUrls.Select(url => MetricsScrape.GetAsync(_http, new Uri(url, "/metrics"), token)));
        return (scrapes.Sum(s => s.Sum("dotnet_gc_pause_time_seconds_total")), scrapes.Sum(s => s.Sum("dotnet_gc_collections_total", ("gc_heap_generation", "gen2"))));
    }

    public void Dispose() => _http.Dispose();
}
