using System.Net;
using Heddle.Contracts.Api;
using Heddle.Contracts.Hosting;
using Heddle.LoadBalancer.LoadBalancing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace Heddle.LoadBalancer.L7;

/// <summary>
/// The full proxy behind an http VIP:port, for what the pass-through (<see cref="HttpConnection"/>) does not speak:
/// HTTP/2 connections, tunnelled to it whole. A Kestrel listener on loopback (HTTP/2 only, by prior knowledge) with
/// YARP, one catch-all route to one cluster whose destinations are the Ready instances, configured in memory and
/// swapped whole on change. Requests in flight to a removed instance may finish for the drain timeout; then they are
/// aborted. No available destination: 503 with a short problem body. Same retry rules as the pass-through.
/// </summary>
internal sealed class YarpFallback : IVipListener
{
    private const string ClusterId = "instances";
    private readonly WebApplication _app;
    private readonly InMemoryConfigProvider _config;
    private readonly LoadBalancerOptions _options;
    private readonly InFlightRequests _inFlight;
    private readonly DrainSchedule _drain;
    private readonly CancellationTokenSource _stop = new();
    private volatile HashSet<string> _current;

    private YarpFallback(WebApplication app, InMemoryConfigProvider config, LoadBalancerOptions options, InFlightRequests inFlight, IReadOnlyList<Backend> backends, IPEndPoint endpoint,
        HttpCounters counters)
    {
        _app = app;
        Counters = counters;
        _config = config;
        _options = options;
        _inFlight = inFlight;
        _current = Ids(backends);
        _drain = new DrainSchedule(options.DrainTimeout, () => _current, gone =>
        {
            inFlight.Abort(gone);
            counters.Forget(gone);
        }, _stop.Token);
        Endpoint = endpoint;
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>Requests forwarded and failed, for the metrics.</summary>
    public HttpCounters Counters { get; }

    /// <summary>Requests being forwarded now.</summary>
    public int InFlight => _inFlight.Count;

    /// <summary>Starts on 127.0.0.1, any free port; counts into <paramref name="counters"/> (the listener's).</summary>
    public static async Task<YarpFallback> StartAsync(VipListener listener, LoadBalancerOptions options, HttpCounters counters)
    {
        var policy = options.HttpPolicy;
        var builder = EmbeddedWebHost.CreateBuilder();
        ListenOptions? bound = null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, l => (bound = l).Protocols = HttpProtocols.Http2);
            k.AddServerHeader = false;
        });
        var config = new InMemoryConfigProvider(Routes(), Clusters(listener.Backends, policy));
        builder.Services.AddSingleton<IHostLifetime, EmbeddedHostLifetime>();
        builder.Services.AddSingleton<IProxyConfigProvider>(config);
        builder.Services.AddReverseProxy();
        var app = builder.Build();
        var inFlight = new InFlightRequests();
        // A custom pipeline replaces YARP's default one, so its load balancing is added back after the 503 check;
        // after it, the one destination left is the request's instance, which draining needs to know.
        app.MapReverseProxy(pipeline =>
        {
            pipeline.Use(async (context, next) =>
            {
                if (context.GetReverseProxyFeature().AvailableDestinations.Count == 0)
                {
                    counters.NoBackend();
                    context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                    context.Response.ContentType = "application/problem+json";
                    await context.Response.WriteAsync(
                        $$"""{"type":"https://heddle.dev/problems/no-healthy-instance","title":"Service Unavailable","status":503,"detail":"service '{{listener.Service}}' has no Ready instance for port {{listener.Port}}"}""");
                    return;
                }

                await ForwardWithRetriesAsync(context, next);
                counters.Count(context, context.GetReverseProxyFeature().ProxiedDestination?.DestinationId);
            });
            pipeline.UseLoadBalancing();
            pipeline.Use((context, next) =>
            {
                var chosen = context.GetReverseProxyFeature().AvailableDestinations;
                return chosen.Count == 1 ? inFlight.TrackAsync(context, chosen[0].DestinationId, next) : next();
            });
        });
        await app.StartAsync();
        return new YarpFallback(app, config, options, inFlight, listener.Backends, bound!.IPEndPoint!, counters);
    }

    /// <summary>How many times in all an idempotent request may be sent when its connections fail before any answer.</summary>
    private const int MaxSends = 10;

    /// <summary>
    /// An idempotent request without a body whose forward failed before any response started is sent again: to
    /// another instance while there is one it has not been sent to (the instance refused or reset the connection: it
    /// died, and the health checks have not caught up yet), else to the same one (it closed a kept-alive connection
    /// just as the request went out on it, as a server at its keep-alive limit does: the next pooled connection may be
    /// about to close as well, so up to <see cref="MaxSends"/> sends in all; a refused connection fails at once). An
    /// instance that timed out is not asked again. Like nginx's proxy_next_upstream, a POST or PATCH is never sent twice.
    /// </summary>
    private static async Task ForwardWithRetriesAsync(HttpContext context, Func<Task> next)
    {
        var proxy = context.GetReverseProxyFeature();
        var destinations = proxy.AvailableDestinations;
        var untried = destinations.ToList();
        await next();
        var hasBody = context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0;
        for (var sends = 1; sends < MaxSends; sends++)
        {
            var failure = context.Features.Get<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>();
            if (failure is null || hasBody || !Idempotent(context.Request.Method) || context.Response.HasStarted
                || failure.Error is not (Yarp.ReverseProxy.Forwarder.ForwarderError.Request or Yarp.ReverseProxy.Forwarder.ForwarderError.RequestTimedOut))
            {
                return;
            }

            untried.Remove(proxy.ProxiedDestination!);
            if (untried.Count == 0 && failure.Error != Yarp.ReverseProxy.Forwarder.ForwarderError.Request)
            {
                return; // a timed-out instance is not asked again
            }

            proxy.AvailableDestinations = untried.Count > 0 ? [.. untried] : destinations;
            context.Features.Set<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>(null);
            context.Response.Clear();
            context.Response.StatusCode = StatusCodes.Status200OK;
            await next();
        }
    }

    private static bool Idempotent(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method)
        || HttpMethods.IsPut(method) || HttpMethods.IsDelete(method);

    /// <summary>Swaps the destinations; requests still running on removed ones after the drain timeout are aborted.</summary>
    public void Update(IReadOnlyList<Backend> backends)
    {
        var previous = _current;
        _current = Ids(backends);
        _config.Update(Routes(), Clusters(backends, _options.HttpPolicy));
        _drain.Changed(previous, _current);
    }

    private static HashSet<string> Ids(IReadOnlyList<Backend> backends) => backends.Select(b => b.Id).ToHashSet(StringComparer.Ordinal);

    private static IReadOnlyList<RouteConfig> Routes() =>
        [new RouteConfig { RouteId = "all", ClusterId = ClusterId, Match = new RouteMatch { Path = "{**catch-all}" } }];

    private static IReadOnlyList<ClusterConfig> Clusters(IReadOnlyList<Backend> backends, string policy) =>
    [
        new ClusterConfig
        {
            ClusterId = ClusterId,
            LoadBalancingPolicy = policy,
            Destinations = backends.ToDictionary(b => b.Id, b => new DestinationConfig { Address = $"http://{b.Address}:{b.Port}/" }, StringComparer.Ordinal),
        },
    ];

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
