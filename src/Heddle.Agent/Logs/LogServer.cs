using Heddle.Agent.Instances;
using Heddle.Contracts.Hosting;
using Heddle.Contracts.Trust;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Heddle.Agent.Logs;

/// <summary>Where the controller reaches a node (a TCP connect when it enrols) and asks it for instance logs.</summary>
public interface ILogEndpoint : IAsyncDisposable
{
    Uri Url { get; }
}

/// <summary>
/// Serves this node's instance logs to the controller (which proxies them to users):
/// GET /logs/{service}/{role}/{index}?stream=stdout|stderr&amp;tail=N&amp;follow=true, over TLS with this node's
/// certificate, to the controller's client certificate only.
/// </summary>
public sealed class LogServer : ILogEndpoint
{
    private readonly WebApplication _app;

    private LogServer(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    public Uri Url { get; }

    /// <summary>
    /// Listens on <paramref name="address"/>:<paramref name="port"/> (0: a free port) before the node has its certificate,
    /// so that the controller can check at enrolment that it reaches this node there (a TCP connect); TLS handshakes
    /// fail until <paramref name="identity"/> returns the node's identity, and requests find no instance until
    /// <paramref name="supervisor"/> returns the supervisor.
    /// </summary>
    public static async Task<LogServer> StartAsync(string address, int port, Func<Connection.NodeIdentity?> identity, Func<InstanceSupervisor?> supervisor, CancellationToken cancellationToken)
    {
        var builder = EmbeddedWebHost.CreateBuilder();
        ListenOptions? listener = null;
        var ip = System.Net.IPAddress.Parse(address);
        builder.WebHost.ConfigureKestrel(k => k.Listen(ip, port, l =>
        {
            (listener = l).Protocols = HttpProtocols.Http1;
            l.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions
            {
                ServerCertificateSelector = (_, _) => identity()?.Certificate,
                ClientCertificateMode = Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.RequireCertificate,
                ClientCertificateValidation = (certificate, _, _) => identity() is { } node && ClusterTrust.Is(certificate, node.Ca, ClusterTrust.ClientAuth, ClusterTrust.ControllerUnit),
            });
        }));
        var app = builder.Build();
        app.MapGet("/logs/{service}/{role}/{index:int}", async (HttpContext context, string service, string role, int index, string? stream, int? tail, bool? follow) =>
        {
            var directory = supervisor()?.DirectoryOf($"{service}/{role}/{index}");
            var name = stream == "stderr" ? "stderr.log" : "stdout.log";
            if (directory is null || !File.Exists(Path.Combine(directory, "logs", name)))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                await context.Response.WriteAsync($"no {name} for {service}/{role}/{index} on this node\n");
                return;
            }

            context.Response.ContentType = "text/plain; charset=utf-8";
            await LogReader.WriteAsync(Path.Combine(directory, "logs", name), tail ?? 100, follow == true, context.Response.Body, context.RequestAborted);
        });
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            await app.DisposeAsync();
            var why = e is Microsoft.AspNetCore.Connections.AddressInUseException || e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException
                ? $"another process holds port {port} there: give --log-port another (0: any free one)"
                : $"is {address} an address of this host? give --address one that is";
            throw new InvalidOperationException($"the agent cannot serve logs on {new System.Net.IPEndPoint(ip, port)} ({e.Message}): {why}", e);
        }

        return new LogServer(app, new Uri($"https://{new System.Net.IPEndPoint(ip, listener!.IPEndPoint!.Port)}/"));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Writes the last lines of a log file and, when following, what is appended to it as it grows.</summary>
public static class LogReader
{
    public static async Task WriteAsync(string path, int tail, bool follow, Stream output, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        file.Position = StartOfLastLines(file, tail);
        var buffer = new byte[16384];
        while (!cancellationToken.IsCancellationRequested)
        {
            int read;
            while ((read = await file.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }

            await output.FlushAsync(cancellationToken);
            if (!follow)
            {
                return;
            }

            // Rotation truncates the file in place: start again from its beginning.
            if (file.Length < file.Position)
            {
                file.Position = 0;
            }

            try
            {
                await Task.Delay(200, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static long StartOfLastLines(FileStream file, int lines)
    {
        if (lines <= 0)
        {
            return file.Length;
        }

        var position = file.Length;
        var found = 0;
        var buffer = new byte[8192];
        while (position > 0)
        {
            var size = (int)Math.Min(buffer.Length, position);
            position -= size;
            file.Position = position;
            file.ReadExactly(buffer, 0, size);
            for (var i = size - 1; i >= 0; i--)
            {
                // The final newline ends the last line rather than starting a new one.
                if (buffer[i] == '\n' && position + i != file.Length - 1 && ++found == lines)
                {
                    return position + i + 1;
                }
            }
        }

        return 0;
    }
}
