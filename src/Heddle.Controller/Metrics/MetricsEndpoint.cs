using System.Diagnostics;
using Heddle.Contracts.Metrics;
using Heddle.Controller.Api;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Controller.Metrics;

/// <summary>
/// <c>GET /metrics</c> on the API port (same TLS), and the API's own request counting. The labels name services and
/// the tenants' own words (placement rules, routes), so a scrape needs a bearer token: an admin API token or a
/// metrics token (`heddle token create --metrics`, which can read <c>/metrics</c> and nothing else). No token: 401;
/// a tenant's token: 403.
/// </summary>
internal static class MetricsEndpoint
{
    public static void Map(WebApplication app)
    {
        var export = app.Services.GetRequiredService<PrometheusExport>();
        var tokens = app.Services.GetRequiredService<Tokens>();
        export.Map(app, async (context, next) =>
        {
            var header = context.Request.Headers.Authorization.ToString();
            if (tokens.AuthenticateMetrics(header) is { } allowed)
            {
                if (!allowed)
                {
                    await Problems.Forbidden("metrics name every tenant's services; read them with an admin or a metrics token (heddle token create --metrics)").ExecuteAsync(context);
                    return;
                }

                await next();
                return;
            }

            await Problems.Unauthorized(context.Request.Headers.Authorization.Count > 0).ExecuteAsync(context);
        });
    }

    /// <summary>Counts every request on the API port by route template (not the path: names stay out of the label), method and status class.</summary>
    public static void CountRequests(WebApplication app, ListenOptions api)
    {
        var metrics = app.Services.GetRequiredService<ControllerMetrics>();
        app.Use(async (context, next) =>
        {
            if (context.Connection.LocalPort != api.IPEndPoint!.Port)
            {
                await next(context);
                return;
            }

            var started = Stopwatch.GetTimestamp();
            try
            {
                await next(context);
            }
            finally
            {
                var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText
                    ?? (context.Request.Path.Equals(PrometheusExport.Path, StringComparison.Ordinal) ? PrometheusExport.Path : "unmatched");
                var status = context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted ? 499 : context.Response.StatusCode;
                metrics.Request(route, context.Request.Method, status, Stopwatch.GetElapsedTime(started));
            }
        });
    }
}
