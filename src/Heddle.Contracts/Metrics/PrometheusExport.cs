using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Heddle.Contracts.Metrics;

/// <summary>
/// Heddle's instruments (<c>System.Diagnostics.Metrics</c>, meters named <c>Heddle.*</c>) of one
/// <see cref="IMeterFactory"/> scope, in the Prometheus text format through OpenTelemetry's exporter. Observable
/// instruments (the data planes' per-thread counters) are read when a scrape asks, never before; every scrape
/// collects afresh (no response cache), so a counter read right after traffic shows it.
/// </summary>
public sealed class PrometheusExport : IDisposable
{
    public const string Path = "/metrics";

    /// <summary>The .NET runtime's built-in meter: <c>dotnet_gc_pause_time_seconds_total</c>, <c>dotnet_gc_collections_total</c> and the rest.</summary>
    public const string RuntimeMeter = "System.Runtime";

    public PrometheusExport(IMeterFactory scope)
    {
        ArgumentNullException.ThrowIfNull(scope);
        // Tests run several controllers, agents and balancers in one process, each with meters of the same names: an
        // instrument is taken only from this scope's meters, the rest are dropped by the view. The runtime's own meter
        // (System.Runtime: GC pauses and collections, heap, allocation, thread pool, CPU) is the process's, whoever asks.
        Provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter("Heddle.*", RuntimeMeter)
            .AddView(instrument => ReferenceEquals(instrument.Meter.Scope, scope) || instrument.Meter.Name == RuntimeMeter ? null : MetricStreamConfiguration.Drop)
            .AddPrometheusExporter(o =>
            {
                o.ScrapeResponseCacheDurationMilliseconds = 0;
                o.TargetInfoEnabled = false;
                o.ScopeInfoEnabled = false;
            })
            .Build();
    }

    public MeterProvider Provider { get; }

    /// <summary>
    /// Answers <c>GET /metrics</c> on <paramref name="app"/>; <paramref name="guard"/> runs first on that branch (the
    /// controller's token check) and may answer instead.
    /// </summary>
    public void Map(IApplicationBuilder app, Func<HttpContext, Func<Task>, Task>? guard = null) =>
        app.UseOpenTelemetryPrometheusScrapingEndpoint(Provider, context => context.Request.Path.Equals(Path, StringComparison.Ordinal), null, branch =>
        {
            branch.Use(async (context, next) =>
            {
                if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
                {
                    context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                    context.Response.Headers.Allow = "GET, HEAD";
                    return;
                }

                await next();
            });
            if (guard is not null)
            {
                branch.Use(guard);
            }
        }, null);

    public void Dispose() => Provider.Dispose();
}
