using System.Diagnostics.Metrics;
using System.Net;
using Heddle.Contracts.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Heddle.Contracts.Metrics;

/// <summary>
/// A small plain-HTTP listener that serves only <c>GET /metrics</c>, for the processes that have no API port of their
/// own (`heddle agent`, `heddle lb`, `heddle dns`). It carries no authentication: it is off unless asked for, and
/// binds loopback unless given another address (<see cref="MetricsListenerOptions"/>). Connections are few and
/// short (a scraper's), so they are capped.
/// </summary>
public sealed class MetricsListener : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly PrometheusExport _export;

    private MetricsListener(WebApplication app, PrometheusExport export, IPEndPoint endpoint)
    {
        _app = app;
        _export = export;
        Endpoint = endpoint;
    }

    /// <summary>Where it answers (the port the OS chose when asked for 0).</summary>
    public IPEndPoint Endpoint { get; }

    public Uri Url => new($"http://{(Endpoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Endpoint.Address}]" : Endpoint.Address.ToString())}:{Endpoint.Port}{PrometheusExport.Path}");

    public static async Task<MetricsListener> StartAsync(IPEndPoint endpoint, IMeterFactory scope, CancellationToken cancellationToken = default)
    {
        var export = new PrometheusExport(scope);
        var builder = EmbeddedWebHost.CreateBuilder();
        ListenOptions? bound = null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(endpoint, l => (bound = l).Protocols = HttpProtocols.Http1);
            k.AddServerHeader = false;
            k.Limits.MaxConcurrentConnections = 32;
            k.Limits.MaxRequestBodySize = 0;
            k.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(30);
        });
        builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        var app = builder.Build();
        export.Map(app);
        app.Run(context =>
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return context.Response.WriteAsync($"only {PrometheusExport.Path} is served here\n");
        });
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            export.Dispose();
            throw;
        }

        return new MetricsListener(app, export, bound!.IPEndPoint!);
    }

    public async ValueTask DisposeAsync()
    {
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
        {
            await _app.StopAsync(grace.Token);
        }

        await _app.DisposeAsync();
        _export.Dispose();
    }

    /// <summary>Started and stopped by the process hosting it, which keeps SIGTERM and Ctrl-C for itself.</summary>
    private sealed class EmbeddedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>
/// Where a process without an API port serves <c>/metrics</c>: off by default (port null); on loopback unless an
/// address is given, since its labels name services and instances and it has no authentication.
/// </summary>
public sealed record MetricsListenerOptions(int? Port, string Address = "127.0.0.1")
{
    public static MetricsListenerOptions Off { get; } = new((int?)null);

    /// <summary>The endpoint to bind, null when off; a bad address or port is an <see cref="ArgumentException"/> that names the option.</summary>
    public IPEndPoint? Endpoint()
    {
        if (Port is not { } port)
        {
            return null;
        }

        if (port is < 0 or > 65535)
        {
            throw new ArgumentException($"--metrics-port must be between 0 and 65535, not {port}");
        }

        return IPAddress.TryParse(Address, out var address)
            ? new IPEndPoint(address, port)
            : throw new ArgumentException($"--metrics-address '{Address}' is not an IP address");
    }
}
