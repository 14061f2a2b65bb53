using Heddle.Contracts.Hosting;
using Heddle.Contracts.Logging;
using Heddle.Controller.Agents;
using Heddle.Controller.Api;
using Heddle.Controller.Blobs;
using Heddle.Controller.Hosting;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller;

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

    /// <summary>The scope of this controller's meters: a DNS server or balancer hosted in its process reports through its <c>/metrics</c> when made with it.</summary>
    public System.Diagnostics.Metrics.IMeterFactory Meters => _app.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();

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
        var builder = EmbeddedWebHost.CreateBuilder();
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
        var listeners = ControllerListeners.Configure(builder.WebHost, address, options, ca, serverCertificate);

        builder.Services.AddController(options, time, ca, store, serverCertificate);

        var app = builder.Build();
        if (!TlsBufferRelease.Supported)
        {
            LogTlsBuffersKept(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<ControllerHost>());
        }

        if (removedClearKey)
        {
            LogClearCaKeyRemoved(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<ControllerHost>(), store.Description);
        }

        await Tokens.BootstrapAsync(app.Services.GetRequiredService<ITrustStore>(), options.StateDirectory, time, cancellationToken);
        if (File.Exists(Path.Combine(options.StateDirectory, "join-token")))
        {
            File.Delete(Path.Combine(options.StateDirectory, "join-token")); // the shared join token of older versions proves nothing any more
        }

        Metrics.MetricsEndpoint.CountRequests(app, listeners.Api);
        SlowRequests.Use(app);
        ApiMiddleware.Use(app, listeners);
        Metrics.MetricsEndpoint.Map(app);
        ApiEndpoints.Map(app);
        TokenEndpoints.Map(app);
        QuotaEndpoints.Map(app);
        MachineEndpoints.Map(app);
        AgentEndpoints.Map(app);
        Dashboard.DashboardEndpoints.Map(app);
        _ = app.Services.GetRequiredService<Publishing.ChangeDispatcher>(); // follows the store's changes from the start
        _ = app.Services.GetRequiredService<StallWatch>(); // watches from the start; disposed with the app

        app.MapGrpcService<AgentService>();
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            // A port taken, say: nothing of this attempt is left open (the store among the app's services), so it can be tried again.
            await AbandonAsync(app, ca);
            throw;
        }

        try
        {
            return await RunAsync(app, options, address, store, ca, serverCertificate, listeners, cancellationToken);
        }
        catch
        {
            // Registering with the other controllers failed, say: the listeners opened above are closed again, or a
            // second try on the same ports would find them held by this half-started controller.
            await AbandonAsync(app, ca);
            throw;
        }
    }

    /// <summary>Closes whatever a start that failed had opened: listeners bound before another failed, hosted services, the store.</summary>
    private static async Task AbandonAsync(WebApplication app, CertificateAuthority ca)
    {
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try
            {
                await app.StopAsync(grace.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
            {
                // never started, or stopping took longer than the grace: disposing closes the rest
            }
        }

        await app.DisposeAsync();
        ca.Dispose();
    }

    /// <summary>The started app becomes a controller: its addresses known, registered with its peers, leadership and sharing running.</summary>
    private static async Task<ControllerHost> RunAsync(WebApplication app, ControllerOptions options, System.Net.IPAddress address, OpenedStore store,
        CertificateAuthority ca, System.Security.Cryptography.X509Certificates.X509Certificate2 serverCertificate, ControllerListeners listeners, CancellationToken cancellationToken)
    {
        // Kestrel writes the port the OS chose back into each listener's endpoint.
        var api = new Uri($"{(options.InsecureHttp ? "http" : "https")}://{Host(address)}:{listeners.Api.IPEndPoint!.Port}/");
        var agent = new Uri($"https://{Host(address)}:{listeners.Agent.IPEndPoint!.Port}/");
        app.Services.GetRequiredService<HeartbeatDatagrams>().Start(address, listeners.Agent.IPEndPoint.Port); // streams opened before this heart-beat on the stream

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
        var election = store.Election(api.ToString(), app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<Leadership.EtcdLeaderElection>());
        host._leading = Task.Run(() => app.Services.GetRequiredService<Leadership.LeaderDuties>().RunAsync(election, host._stop.Token));
        if (store.Shared)
        {
            var sessions = app.Services.GetRequiredService<AgentSessions>();
            host._sharing = app.Services.GetRequiredService<NodeHealthMonitor>().ShareAsync(() => sessions.Connected, host._stop.Token);
        }

        return host;
    }

    private readonly CancellationTokenSource _stop = new();
    private Timer? _stillStopping;
    private Task _leading = Task.CompletedTask;
    private Task _sharing = Task.CompletedTask;

    private static string Host(System.Net.IPAddress address) => address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Each step of a stop is timed: a stop that takes long says which step held it (the leader's term ending, the
        // store, the open streams), since an operator restarting a controller waits for its ports to be free. The timer
        // is kept in a field: a timer only a suspended method refers to can be collected, and would then never say so.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var steps = new List<string>();
        var current = "cancelling";
        var log = Services.GetRequiredService<ILoggerFactory>().CreateLogger<ControllerHost>();
        _stillStopping = new Timer(_ => LogStillStopping(log, clock.Elapsed.TotalSeconds, Volatile.Read(ref current)), null, StillStoppingAfter, StillStoppingAfter);
        // Each step is bounded: a stop that waits for ever (a pass that ignores cancellation, a stream that never ends) is
        // worse for an operator than one that gives up on a step, says so, and goes on to free the ports.
        async Task Step(string name, Func<Task> step, TimeSpan? limit = null)
        {
            var started = clock.Elapsed;
            Volatile.Write(ref current, name);
            try
            {
                await step().WaitAsync(limit ?? StepLimit);
                steps.Add($"{name} {(clock.Elapsed - started).TotalSeconds:0.0} s");
            }
            catch (TimeoutException)
            {
                steps.Add($"{name} given up after {(clock.Elapsed - started).TotalSeconds:0.0} s");
                LogStepGivenUp(log, name, (limit ?? StepLimit).TotalSeconds);
            }
            catch (OperationCanceledException)
            {
                steps.Add($"{name} cancelled {(clock.Elapsed - started).TotalSeconds:0.0} s");
            }
            catch (Exception e)
            {
                // A loop that ended in an error (long before the stop, perhaps) must not end the stop: the ports are
                // still to be freed. It is said here, where the error first shows.
                steps.Add($"{name} failed after {(clock.Elapsed - started).TotalSeconds:0.0} s");
                LogStepFailed(log, e, name);
            }
        }

        try
        {
            // Cancelling runs every callback registered on the token; one that blocks must not hold the stop.
            await Step("cancelling", () => _stop.CancelAsync());
            await Step("leadership", () => _leading);
            await Step("node health sharing", () => _sharing);
            await Step("deregistering", () => Services.GetRequiredService<BlobPeers>().DeregisterAsync());
            Services.GetRequiredService<AgentSessions>().CloseAll();
            await Step("listeners and streams", async () =>
            {
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                // Long streams (event and projection followers, an agent that reconnected meanwhile) are cut after the grace.
                await _app.StopAsync(grace.Token);
            }, TimeSpan.FromSeconds(15));
            // The services' own disposal: the store's channels and watches, the mirror, the sessions.
            await Step("disposing services", () => _app.DisposeAsync().AsTask());
        }
        finally
        {
            await _stillStopping.DisposeAsync();
        }

        if (clock.Elapsed > SlowStop)
        {
            LogSlowStop(log, clock.Elapsed.TotalSeconds, string.Join(", ", steps));
        }

        _ca.Dispose();
    }

    private static readonly TimeSpan SlowStop = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan StillStoppingAfter = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan StepLimit = TimeSpan.FromSeconds(10);

    [LoggerMessage(Level = LogLevel.Error, Message = "Stopping: gave up waiting for {Step} after {Seconds:0} s; going on with the stop")]
    private static partial void LogStepGivenUp(ILogger logger, string step, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "Stopping: {Step} had ended in an error; going on with the stop")]
    private static partial void LogStepFailed(ILogger logger, Exception exception, string step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Still stopping after {Seconds:0.0} s, waiting for: {Step}")]
    private static partial void LogStillStopping(ILogger logger, double seconds, string step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stopping took {Seconds:0.0} s: {Steps}")]
    private static partial void LogSlowStop(ILogger logger, double seconds, string steps);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The store ({Store}) held the cluster CA's private key in clear, as older versions kept it; it is removed (the store keeps the CA certificate alone). "
        + "etcd keeps old revisions until it is compacted and its files until defragmented: run 'etcdctl compact <revision>' and 'etcdctl defrag', and take the key as seen by whoever could read etcd")]
    private static partial void LogClearCaKeyRemoved(ILogger logger, string store);

    [LoggerMessage(Level = LogLevel.Warning, Message = "This runtime's TLS streams do not let the controller reach OpenSSL: each agent connection keeps OpenSSL's two record buffers (about 34 KB) while idle")]
    private static partial void LogTlsBuffersKept(ILogger logger);
}
