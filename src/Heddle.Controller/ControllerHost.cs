using Heddle.Contracts.Api;
using Heddle.Controller.Agents;
using Heddle.Controller.Api;
using Heddle.Controller.Blobs;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller;

/// <summary>
/// What `heddle info` shows. The DNS fields come from a DNS server hosted here, or else from the `heddle dns` processes
/// that follow this controller's records and said where they answer (the most recent one while it follows).
/// </summary>
public sealed class ControllerInfo(string stateDirectory)
{
    private readonly List<(string Address, string Zone)> _dnsFollowers = [];

    public Uri? ApiUrl { get; set; }

    public Uri? AgentUrl { get; set; }

    /// <summary>Where this cluster's DNS server answers (address:port), when one is hosted with the controller.</summary>
    public string? DnsAddress { get; set; }

    public string? Zone { get; set; }

    /// <summary>Records a separate DNS server following this controller, until the returned handle is disposed.</summary>
    public IDisposable AddDnsFollower(string address, string zone)
    {
        var entry = (address, zone);
        lock (_dnsFollowers)
        {
            _dnsFollowers.Add(entry);
        }

        return new Release(() =>
        {
            lock (_dnsFollowers)
            {
                _dnsFollowers.Remove(entry);
            }
        });
    }

    public ClusterInfo Describe()
    {
        (string Address, string Zone)? follower;
        lock (_dnsFollowers)
        {
            follower = _dnsFollowers.Count > 0 ? _dnsFollowers[^1] : null;
        }

        return new(ApiUrl?.ToString() ?? string.Empty, AgentUrl?.ToString() ?? string.Empty, typeof(ControllerInfo).Assembly.GetName().Version?.ToString() ?? "0",
            DnsAddress ?? follower?.Address, Zone ?? follower?.Zone, stateDirectory);
    }

    private sealed class Release(Action release) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                release();
            }
        }
    }
}

/// <summary>
/// A running controller: the REST API (HTTP/1.1, so curl and browsers work) and the agents' gRPC endpoint
/// (HTTP/2 without TLS) on two ports, the store, the reconcilers and the node health monitor.
/// </summary>
public sealed class ControllerHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ControllerHost(WebApplication app, Uri apiUrl, Uri agentUrl, Secrets secrets)
    {
        _app = app;
        ApiUrl = apiUrl;
        AgentUrl = agentUrl;
        ApiToken = secrets.ApiToken;
        JoinToken = secrets.JoinToken;
    }

    public Uri ApiUrl { get; }

    public Uri AgentUrl { get; }

    public string ApiToken { get; }

    public string JoinToken { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<ControllerHost> StartAsync(ControllerOptions options, TimeProvider? time = null, Action<ILoggingBuilder>? logging = null, CancellationToken cancellationToken = default)
    {
        // The store holds the tokens, so the state directory is the owner's alone.
        Directory.CreateDirectory(options.StateDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(options.StateDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logging is null)
        {
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        }
        else
        {
            logging(builder.Logging);
        }

        var address = System.Net.IPAddress.Parse(options.ListenAddress);
        ListenOptions? apiListener = null;
        ListenOptions? agentListener = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, options.ApiPort, listen => (apiListener = listen).Protocols = HttpProtocols.Http1);
            kestrel.Listen(address, options.AgentPort, listen => (agentListener = listen).Protocols = HttpProtocols.Http2);
            kestrel.Limits.MaxRequestBodySize = null;
        });

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(time ?? TimeProvider.System);
        services.AddSingleton<IClusterStore>(sp => new SqliteClusterStore(Path.Combine(options.StateDirectory, "cluster.db"), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new Secrets(sp.GetRequiredService<IClusterStore>(), options.StateDirectory));
        services.AddSingleton(new BlobStore(Path.Combine(options.StateDirectory, "blobs")));
        services.AddSingleton(new ControllerInfo(options.StateDirectory));
        services.AddSingleton<EventLog>();
        services.AddSingleton<Dns.DnsRecordSource>();
        services.AddSingleton<LoadBalancing.LoadBalancerConfigSource>();
        services.AddSingleton(new LoadBalancing.VipPool(options.VipPool ?? "127.77.0.0/24"));
        services.AddSingleton<LoadBalancing.VipConflicts>();
        services.AddSingleton<ServiceModels>();
        services.AddSingleton<GoalStates>();
        services.AddSingleton<AgentSessions>();
        services.AddSingleton<WorkQueue>();
        services.AddSingleton<Publishing.IPublicationBarrier, Publishing.PublicationBarrier>();
        services.AddSingleton<DeploymentReconciler>();
        services.AddSingleton<Api.Deployments>();
        services.AddSingleton<Api.Images>();
        services.AddSingleton<Api.Swaps>();
        services.AddSingleton<Api.UpgradeControl>();
        services.AddSingleton<NodeHealthMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<NodeHealthMonitor>());
        services.AddHostedService<ReconcileLoop>();
        services.AddHttpClient("logs", c => c.Timeout = Timeout.InfiniteTimeSpan);
        services.AddGrpc();
        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter()));

        var app = builder.Build();
        var secrets = app.Services.GetRequiredService<Secrets>();
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.StartsWithSegments("/v1") && !Authorized(context, secrets))
            {
                await Problems.Unauthorized(context.Request.Headers.Authorization.Count > 0).ExecuteAsync(context);
                return;
            }

            await next(context);
        });
        app.Use(async (context, next) =>
        {
            // Package and image uploads stream to disk under their own limits; every other API body is a small JSON
            // document (a configuration is at most 1 MiB), so a huge one is cut off at the door, not buffered.
            if (context.Request.Path.StartsWithSegments("/v1") && !IsUpload(context.Request)
                && context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = MaxJsonBodyBytes;
            }

            await next(context);
        });
        ApiEndpoints.Map(app);
        _ = app.Services.GetRequiredService<Dns.DnsRecordSource>(); // subscribe to events from the start
        _ = app.Services.GetRequiredService<LoadBalancing.LoadBalancerConfigSource>();
        app.MapGrpcService<AgentService>();
        await app.StartAsync(cancellationToken);

        // Kestrel writes the port the OS chose back into each listener's endpoint.
        var api = new Uri($"http://{Host(address)}:{apiListener!.IPEndPoint!.Port}/");
        var agent = new Uri($"http://{Host(address)}:{agentListener!.IPEndPoint!.Port}/");

        var info = app.Services.GetRequiredService<ControllerInfo>();
        info.ApiUrl = api;
        info.AgentUrl = agent;
        return new ControllerHost(app, api, agent, secrets);
    }

    /// <summary>The largest JSON body the API reads: a 1 MiB configuration, escaped, with room to spare.</summary>
    internal const long MaxJsonBodyBytes = 4L << 20;

    private static bool IsUpload(HttpRequest request) => HttpMethods.IsPut(request.Method)
        && (request.Path.StartsWithSegments("/v1/packages") || request.Path.StartsWithSegments("/v1/images"));

    /// <summary>The user API needs the API token; package and image downloads also accept the join token (agents fetch them).</summary>
    private static bool Authorized(HttpContext context, Secrets secrets)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (secrets.IsApiToken(header))
        {
            return true;
        }

        return (context.Request.Path.StartsWithSegments("/v1/packages") || context.Request.Path.StartsWithSegments("/v1/images/blobs"))
            && HttpMethods.IsGet(context.Request.Method) && secrets.IsJoinToken(header);
    }

    private static string Host(System.Net.IPAddress address) => address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
