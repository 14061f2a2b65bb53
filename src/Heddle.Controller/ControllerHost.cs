using Heddle.Contracts.Api;
using Heddle.Controller.Agents;
using Heddle.Controller.Api;
using Heddle.Controller.Blobs;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Heddle.Contracts.Logging;
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
/// A running controller: the REST API (HTTPS, HTTP/1.1, so curl and browsers work) and the agents' port (HTTP/2 over
/// TLS: gRPC and blob downloads, node certificates required past enrolment) on two ports, the store, the
/// certificate authority, the reconcilers and the node health monitor.
/// </summary>
public sealed partial class ControllerHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ControllerHost(WebApplication app, Uri apiUrl, Uri agentUrl, string? apiToken, CertificateAuthority ca)
    {
        _app = app;
        ApiUrl = apiUrl;
        AgentUrl = agentUrl;
        ApiToken = apiToken ?? string.Empty;
        CaCertificatePem = ca.CertificatePem;
        CaCertificate = Heddle.Contracts.Trust.ClusterTrust.Load(CaCertificatePem);
        _ca = ca;
    }

    private readonly CertificateAuthority _ca;

    public Uri ApiUrl { get; }

    public Uri AgentUrl { get; }

    /// <summary>The admin token made at cluster init, read back from the state folder (empty if that file was removed).</summary>
    public string ApiToken { get; }

    /// <summary>The cluster CA certificate (PEM, and loaded without its key): what clients check this controller against.</summary>
    public string CaCertificatePem { get; }

    public System.Security.Cryptography.X509Certificates.X509Certificate2 CaCertificate { get; }

    /// <summary>The cluster CA's hash as `heddle login --ca-hash` takes it (sha256:HEX of its public key).</summary>
    public string CaHash => Heddle.Contracts.Trust.CaHash.Format(_ca.PublicKeyHash);

    /// <summary>Where the admin token made at cluster init can be read, as a sentence (this state folder, or the first controller's).</summary>
    public string AdminTokenLocation { get; private init; } = string.Empty;

    /// <summary>The certificate both ports present (made at start from the cluster CA).</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2 ServerCertificate { get; private init; } = null!;

    public IServiceProvider Services => _app.Services;

    /// <summary>A new join string (as `heddle token create --join` prints), valid for <paramref name="ttl"/> (default 1 h) and any number of agents unless <paramref name="uses"/>.</summary>
    public async Task<string> CreateJoinStringAsync(TimeSpan? ttl = null, int? uses = null)
    {
        var (token, _) = await Services.GetRequiredService<Tokens>().CreateAsync(TokenKinds.Join, null, ttl ?? TimeSpan.FromHours(1), uses, "made by the host");
        return Heddle.Contracts.Trust.JoinString.Format(token, _ca.PublicKeyHash);
    }

    public static async Task<ControllerHost> StartAsync(ControllerOptions options, TimeProvider? time = null, Action<ILoggingBuilder>? logging = null, CancellationToken cancellationToken = default)
    {
        // The store holds the tokens' hashes and the folder the CA key, so the state directory is the owner's alone.
        Directory.CreateDirectory(options.StateDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(options.StateDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        time ??= TimeProvider.System;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logging is null)
        {
            builder.Logging.AddHeddleConsole().SetMinimumLevel(LogLevel.Warning)
                .AddFilter(typeof(Leadership.EtcdLeaderElection).Namespace, LogLevel.Information); // who leads, and when that changes, is what an operator looks for first
        }
        else
        {
            logging(builder.Logging);
        }

        var address = System.Net.IPAddress.Parse(options.ListenAddress);
        var store = await ClusterStores.OpenAsync(options, time, cancellationToken);
        var removedClearKey = false;
        if (store.Shared)
        {
            try
            {
                removedClearKey = await SharedAuthority.ShareAsync(store.Mirror, options.StateDirectory, cancellationToken);
            }
            catch
            {
                store.Dispose(); // refused (no CA, another cluster's): nothing of this attempt stays open
                throw;
            }
        }

        var ca = CertificateAuthority.LoadOrCreate(options.StateDirectory, time);
        var serverCertificate = ca.IssueController(address, time, options.TlsNames);
        ListenOptions? apiListener = null;
        ListenOptions? agentListener = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, options.ApiPort, listen =>
            {
                (apiListener = listen).Protocols = HttpProtocols.Http1;
                if (!options.InsecureHttp)
                {
                    listen.UseHttps(serverCertificate);
                }
            });
            kestrel.Listen(address, options.AgentPort, listen =>
            {
                (agentListener = listen).Protocols = HttpProtocols.Http1AndHttp2; // gRPC gets HTTP/2 by ALPN; downloads may use either
                listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = serverCertificate,
                    // Enrolment comes without a certificate; everything else on this port is refused without a node's (or, for
                    // blob copies between controllers sharing a store, a controller's).
                    ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                    // Each connection proves the node afresh (a resumed session would carry an old certificate).
                    OnAuthenticate = (_, ssl) => ssl.AllowTlsResume = false,
                    ClientCertificateValidation = (certificate, _, _) =>
                        Heddle.Contracts.Trust.ClusterTrust.Is(certificate, ca.Certificate, Heddle.Contracts.Trust.ClusterTrust.ClientAuth, Heddle.Contracts.Trust.ClusterTrust.NodeUnit)
                        || Heddle.Contracts.Trust.ClusterTrust.Is(certificate, ca.Certificate, Heddle.Contracts.Trust.ClusterTrust.ClientAuth, Heddle.Contracts.Trust.ClusterTrust.ControllerUnit),
                });
            });
            kestrel.Limits.MaxRequestBodySize = null;
        });

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(time);
        services.AddSingleton(ca);
        services.AddSingleton(_ => store);
        services.AddSingleton(sp => sp.GetRequiredService<OpenedStore>().Cluster);
        services.AddSingleton(sp => sp.GetRequiredService<OpenedStore>().Trust);
        services.AddSingleton(sp => sp.GetRequiredService<OpenedStore>().Quotas);
        services.AddSingleton<Quotas.TenantQuotas>();
        services.AddSingleton<Leadership.LeaderTerm>();
        services.AddSingleton<ReconcileLoop>();
        services.AddSingleton<Tokens>();
        services.AddSingleton<NodeCertificates>();
        services.AddSingleton<NodeReachability>();
        services.AddSingleton(new BlobStore(Path.Combine(options.StateDirectory, "blobs")));
        services.AddSingleton<BlobPeers>();
        services.AddHttpClient(BlobPeers.ClientName, c => c.Timeout = TimeSpan.FromMinutes(30))
            .ConfigurePrimaryHttpMessageHandler(() =>
            {
                var handler = Heddle.Contracts.Trust.ClusterTrust.Handler(ca.Certificate, () => serverCertificate);
                handler.ConnectTimeout = TimeSpan.FromSeconds(2);
                return handler;
            });
        services.AddSingleton(new ControllerInfo(options.StateDirectory));
        services.AddSingleton<EventLog>();
        services.AddSingleton<Dns.DnsRecordSource>();
        services.AddSingleton<LoadBalancing.LoadBalancerConfigSource>();
        services.AddSingleton(new LoadBalancing.VipPool(options.VipPool ?? "127.77.0.0/24"));
        services.AddSingleton(options.BalancerTiming);
        services.AddSingleton<LoadBalancing.VipConflicts>();
        services.AddSingleton<LoadBalancing.BalancerRegistry>();
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
        services.AddSingleton<Api.NodeRemoval>();
        services.AddSingleton<NodeHealthMonitor>();
        services.AddHttpClient(Api.Logs.ClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => Heddle.Contracts.Trust.ClusterTrust.Handler(ca.Certificate, () => serverCertificate, Heddle.Contracts.Trust.ClusterTrust.NodeUnit));
        services.AddGrpc(grpc => grpc.MaxReceiveMessageSize = 16 << 20);
        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter()));

        var app = builder.Build();
        if (removedClearKey)
        {
            LogClearCaKeyRemoved(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<ControllerHost>(), store.Description);
        }

        await Tokens.BootstrapAsync(app.Services.GetRequiredService<ITrustStore>(), options.StateDirectory, time, cancellationToken);
        if (File.Exists(Path.Combine(options.StateDirectory, "join-token")))
        {
            File.Delete(Path.Combine(options.StateDirectory, "join-token")); // the shared join token of older versions proves nothing any more
        }

        var tokens = app.Services.GetRequiredService<Tokens>();
        app.Use((context, next) => Ports.Separate(context, next, apiListener!, agentListener!));
        app.Use(async (context, next) =>
        {
            // A store that cannot take a write (etcd without a quorum) is the one thing every write can meet: a sentence
            // and 503, nothing half done (each write is one commit). Reads answer from this controller's copy meanwhile.
            try
            {
                await next(context);
            }
            catch (Store.Kv.KvUnavailableException e) when (!context.Response.HasStarted)
            {
                context.Response.Clear();
                await Problems.Problem(StatusCodes.Status503ServiceUnavailable, Heddle.Contracts.Api.ProblemTypes.StoreUnavailable, "Store unavailable",
                    $"{e.Message}; nothing was changed: try again when the store is back").ExecuteAsync(context);
            }
        });
        app.Use(async (context, next) =>
        {
            // The CA certificate is public: `heddle login --ca-hash` fetches it before it has anything to trust.
            if (!context.Request.Path.StartsWithSegments("/v1") || (HttpMethods.IsGet(context.Request.Method) && context.Request.Path.Equals(ApiEndpoints.CaPath)))
            {
                await next(context);
                return;
            }

            if (tokens.Authenticate(context.Request.Headers.Authorization.ToString()) is not { } caller)
            {
                await Problems.Unauthorized(context.Request.Headers.Authorization.Count > 0).ExecuteAsync(context);
                return;
            }

            if (!caller.IsAdmin && Scopes.AdminOnly(context.Request))
            {
                await Problems.Forbidden($"this is a cluster-wide operation; a token of {caller} cannot use it (ask an admin)").ExecuteAsync(context);
                return;
            }

            context.Items[typeof(Caller)] = caller;
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
        TokenEndpoints.Map(app);
        QuotaEndpoints.Map(app);
        AgentEndpoints.Map(app);
        _ = app.Services.GetRequiredService<Dns.DnsRecordSource>(); // subscribe to events from the start
        _ = app.Services.GetRequiredService<LoadBalancing.LoadBalancerConfigSource>();
        if (store.Shared)
        {
            _ = new Publishing.RemoteChanges(store.Mirror, store.Cluster, app.Services.GetRequiredService<WorkQueue>(), app.Services.GetRequiredService<AgentSessions>(),
                app.Services.GetRequiredService<EventLog>());
        }

        app.MapGrpcService<AgentService>();
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            // A port taken, say: nothing of this attempt is left open (the store among the app's services), so it can be tried again.
            await app.DisposeAsync();
            ca.Dispose();
            throw;
        }

        // Kestrel writes the port the OS chose back into each listener's endpoint.
        var api = new Uri($"{(options.InsecureHttp ? "http" : "https")}://{Host(address)}:{apiListener!.IPEndPoint!.Port}/");
        var agent = new Uri($"https://{Host(address)}:{agentListener!.IPEndPoint!.Port}/");

        var info = app.Services.GetRequiredService<ControllerInfo>();
        info.ApiUrl = api;
        info.AgentUrl = agent;
        var bootstrap = Path.Combine(options.StateDirectory, Tokens.BootstrapFile);
        var host = new ControllerHost(app, api, agent, File.Exists(bootstrap) ? File.ReadAllText(bootstrap).Trim() : null, ca)
        {
            AdminTokenLocation = Tokens.WhereIsTheAdminToken(app.Services.GetRequiredService<ITrustStore>(), options.StateDirectory),
            ServerCertificate = serverCertificate,
        };
        await app.Services.GetRequiredService<BlobPeers>().RegisterAsync(api, agent, cancellationToken);
        host._leading = Task.Run(() => host.LeadAsync(store.Election(api.ToString(), app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<Leadership.EtcdLeaderElection>())));
        if (store.Shared)
        {
            var sessions = app.Services.GetRequiredService<AgentSessions>();
            host._sharing = app.Services.GetRequiredService<NodeHealthMonitor>().ShareAsync(() => sessions.Connected, host._stop.Token);
        }

        return host;
    }

    private readonly CancellationTokenSource _stop = new();
    private Task _leading = Task.CompletedTask;
    private Task _sharing = Task.CompletedTask;

    /// <summary>
    /// Campaigns for leadership for as long as the controller runs; while it leads, it runs the reconcilers (upgrade
    /// walks included) and judges node health, and stops both as soon as its term may have ended. Every controller
    /// serves the API and the agents whether it leads or not.
    /// </summary>
    private async Task LeadAsync(Leadership.ILeaderElection election)
    {
        var term = Services.GetRequiredService<Leadership.LeaderTerm>();
        term.Election = election;
        var loop = Services.GetRequiredService<ReconcileLoop>();
        var health = Services.GetRequiredService<NodeHealthMonitor>();
        var balancers = Services.GetRequiredService<LoadBalancing.BalancerRegistry>();
        try
        {
            var shared = Services.GetRequiredService<OpenedStore>().Shared;
            var events = Services.GetRequiredService<EventLog>();
            await election.RunAsync(async (leadership, leading) =>
            {
                term.Current = leadership;
                if (shared)
                {
                    try
                    {
                        await events.AddAsync(EventKinds.LeaderElected, leadership.Holder, $"controller {leadership.Holder} leads (term {leadership.Term}); it runs the reconcilers, node health and upgrade walks");
                    }
                    catch (Store.Kv.KvUnavailableException)
                    {
                        // The store is away: the term cannot write anything either, and ends soon.
                    }
                }

                try
                {
                    await Task.WhenAll(Until(loop.RunAsync, leading), Until(health.RunAsync, leading), Until(balancers.RunAsync, leading));
                }
                finally
                {
                    term.Current = null;
                }
            }, _stop.Token);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private static async Task Until(Func<CancellationToken, Task> run, CancellationToken token)
    {
        try
        {
            await run(token);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
    }

    /// <summary>The largest JSON body the API reads: a 1 MiB configuration, escaped, with room to spare.</summary>
    internal const long MaxJsonBodyBytes = 4L << 20;

    private static bool IsUpload(HttpRequest request) => HttpMethods.IsPut(request.Method)
        && (request.Path.StartsWithSegments("/v1/packages") || request.Path.StartsWithSegments("/v1/images"));

    private static string Host(System.Net.IPAddress address) => address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        await _leading;
        await _sharing;
        await Services.GetRequiredService<BlobPeers>().DeregisterAsync();
        Services.GetRequiredService<AgentSessions>().CloseAll();
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            // Long streams (event and projection followers, an agent that reconnected meanwhile) are cut after the grace.
            await _app.StopAsync(grace.Token);
        }

        await _app.DisposeAsync();
        _ca.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The store ({Store}) held the cluster CA's private key in clear, as older versions kept it; it is removed (the store keeps the CA certificate alone). "
        + "etcd keeps old revisions until it is compacted and its files until defragmented: run 'etcdctl compact <revision>' and 'etcdctl defrag', and take the key as seen by whoever could read etcd")]
    private static partial void LogClearCaKeyRemoved(ILogger logger, string store);
}
