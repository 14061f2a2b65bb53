using System.Net;
using Heddle.Contracts.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace Heddle.LoadBalancer.L7;

/// <summary>
/// The L7 proxy for one http VIP:port: a Kestrel listener with YARP, one catch-all route to one cluster whose
/// destinations are the Ready instances, configured in memory and swapped whole on change (requests in flight to a
/// removed instance finish). No available destination: 503 with a short problem body.
/// </summary>
internal sealed class HttpVipListener : IVipListener
{
    private const string ClusterId = "instances";
    private readonly WebApplication _app;
    private readonly InMemoryConfigProvider _config;
    private readonly string _policy;

    private HttpVipListener(WebApplication app, InMemoryConfigProvider config, string policy, IPEndPoint endpoint)
    {
        _app = app;
        _config = config;
        _policy = policy;
        Endpoint = endpoint;
    }

    public IPEndPoint Endpoint { get; }

    public static async Task<HttpVipListener> StartAsync(VipListener listener, LoadBalancerOptions options)
    {
        var policy = options.HttpPolicy;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        ListenOptions? bound = null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Parse(listener.Vip), listener.Port, l => (bound = l).Protocols = HttpProtocols.Http1AndHttp2);
            k.AddServerHeader = false;
        });
        var config = new InMemoryConfigProvider(Routes(), Clusters(listener.Backends, policy));
        builder.Services.AddSingleton<IProxyConfigProvider>(config);
        builder.Services.AddReverseProxy();
        var app = builder.Build();
        // A custom pipeline replaces YARP's default one, so its load balancing is added back after the 503 check.
        // A custom pipeline replaces YARP's default one, so its load balancing is added back after the 503 check.
        app.MapReverseProxy(pipeline =>
        {
            pipeline.Use(async (context, next) =>
            {
                if (context.GetReverseProxyFeature().AvailableDestinations.Count == 0)
                {
                    context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                    context.Response.ContentType = "application/problem+json";
                    await context.Response.WriteAsync(
                        $$"""{"type":"https://heddle.dev/problems/no-healthy-instance","title":"Service Unavailable","status":503,"detail":"service '{{listener.Service}}' has no Ready instance for port {{listener.Port}}"}""");
                    return;
                }

                await ForwardWithOneRetryAsync(context, next);
            });
            pipeline.UseLoadBalancing();
        });
        await app.StartAsync();
        return new HttpVipListener(app, config, policy, bound!.IPEndPoint!);
    }

    /// <summary>
    /// A request without a body whose forward failed before any response started (the instance refused or reset the
    /// connection: it died, and the health checks have not caught up yet) is sent once more to another instance.
    /// </summary>
    private static async Task ForwardWithOneRetryAsync(HttpContext context, Func<Task> next)
    {
        var proxy = context.GetReverseProxyFeature();
        var destinations = proxy.AvailableDestinations;
        await next();
        var failure = context.Features.Get<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>();
        var hasBody = context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0;
        if (failure is null || hasBody || context.Response.HasStarted || failure.Error is not (Yarp.ReverseProxy.Forwarder.ForwarderError.Request or Yarp.ReverseProxy.Forwarder.ForwarderError.RequestTimedOut))
        {
            return;
        }

        var others = destinations.Where(d => d != proxy.ProxiedDestination).ToList();
        if (others.Count == 0)
        {
            return;
        }

        proxy.AvailableDestinations = others;
        context.Features.Set<Yarp.ReverseProxy.Forwarder.IForwarderErrorFeature>(null);
        context.Response.Clear();
        context.Response.StatusCode = StatusCodes.Status200OK;
        await next();
    }

    public void Update(IReadOnlyList<Backend> backends) => _config.Update(Routes(), Clusters(backends, _policy));

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
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
