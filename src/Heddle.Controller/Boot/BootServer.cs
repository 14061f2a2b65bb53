using System.Net;
using Heddle.Contracts.Api;
using Heddle.Contracts.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Boot;

/// <summary>
/// The boot service's HTTP side, on the provisioning network only: <c>/boot/ipxe?mac=</c> asks the controller what that
/// card gets and answers with its iPXE script; <c>/boot/images/{sha256}</c> are the parts of the host images decisions
/// named (<see cref="BootImages"/>), <c>/boot/kernel</c> and <c>/boot/initrd</c> the boot service's own. Plain HTTP,
/// as firmware speaks it (see README "Adding machines" for what that lets a neighbour on this network do). At most
/// <see cref="MaxDecisionsAtOnce"/> questions to the controller at once; more are told at once to ask again, so a flood of
/// booting cards cannot queue up work on the controller. What may pass (the service busy, the controller not answering,
/// an image part not fetched yet, a machine told to try later) is answered with a script that asks again after a pause
/// taken here (<see cref="IpxeScripts.Retry"/>), with status 200: iPXE runs no script that came with an error status.
/// </summary>
public sealed class BootServer : IAsyncDisposable
{
    public const int MaxDecisionsAtOnce = 8;

    private readonly WebApplication _app;

    private BootServer(WebApplication app, Uri baseUrl)
    {
        _app = app;
        BaseUrl = baseUrl;
    }

    /// <summary>http://address:port/ of the listener.</summary>
    public Uri BaseUrl { get; }

    public Uri Script => new(BaseUrl, "boot/ipxe");

    public static async Task<BootServer> StartAsync(IPAddress address, int port, BootImages images, string? append,
        Func<string, CancellationToken, Task<BootDecision>> decide, TextWriter log, CancellationToken cancellationToken = default)
    {
        var builder = EmbeddedWebHost.CreateBuilder();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, port);
            kestrel.Limits.MaxConcurrentConnections = 512;
            kestrel.Limits.MaxRequestBodySize = 0; // every request here is a GET
            kestrel.Limits.MaxRequestHeadersTotalSize = 8192;
        });
        var app = builder.Build();
        var decisions = new SemaphoreSlim(MaxDecisionsAtOnce);
        app.MapGet("/boot/ipxe", async (HttpContext context) =>
        {
            var mac = context.Request.Query["mac"].ToString();
            var self = new Uri($"http://{context.Request.Host}/");
            var retry = IpxeScripts.RetryUrl(self, mac);
            if (int.TryParse(context.Request.Query["after"], out var after) && after is > 0 and <= IpxeScripts.RetryAfterSeconds)
            {
                // A card told to try again: its pause is taken here, so its firmware needs no sleep command and no slot is held.
                await Task.Delay(TimeSpan.FromSeconds(after), context.RequestAborted);
            }

            if (!await decisions.WaitAsync(0, context.RequestAborted))
            {
                return Results.Text(IpxeScripts.Retry("the boot service is busy; asking again", retry), "text/plain");
            }

            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
                deadline.CancelAfter(TimeSpan.FromSeconds(15));
                var decision = await decide(mac, deadline.Token);
                log.WriteLine($"heddle boot: {decision.Mac} from {context.Connection.RemoteIpAddress}: {decision.Action}{(decision.Machine is null ? string.Empty : $" (machine {decision.Machine})")}"
                    + (decision.Action == BootAction.Install ? $", {(decision.Image is { } named ? $"host image {named.Name}" : "this service's kernel and initramfs")}" : string.Empty));
                if (decision.Action != BootAction.Install)
                {
                    return Results.Text(IpxeScripts.For(decision, self, self, append, retry), "text/plain");
                }

                // A first boot of an image waits for its parts to come from the controller (once; later boots find them here).
                using var fetching = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
                fetching.CancelAfter(BootImages.FetchDeadline);
                var (kernel, initrd, missing) = await images.PartsAsync(decision, fetching.Token);
                if (missing is not null)
                {
                    log.WriteLine($"heddle boot: {decision.Mac}: {missing}");
                    return Results.Text(IpxeScripts.Retry(missing, retry), "text/plain");
                }

                return Results.Text(IpxeScripts.For(decision, new Uri(self, kernel), new Uri(self, initrd), append), "text/plain");
            }
            catch (HeddleApiException e) when (e.Status == HttpStatusCode.BadRequest)
            {
                return Results.Text($"#!ipxe\necho heddle: {Printable.Of(mac)} is not a MAC address\nexit 1\n", "text/plain", statusCode: StatusCodes.Status400BadRequest);
            }
            catch (Exception e) when (e is HeddleApiException or HttpRequestException or IOException or InvalidDataException or OperationCanceledException)
            {
                log.WriteLine($"heddle boot: {Printable.Of(mac)}: the controller gave no decision or host image ({e.Message}); the card gets none and may ask again");
                return Results.Text(IpxeScripts.Retry("the controller did not answer; asking again", retry), "text/plain");
            }
            finally
            {
                decisions.Release();
            }
        });
        app.MapGet("/boot/kernel", () => images.Kernel is { } kernel ? Results.File(kernel, "application/octet-stream", enableRangeProcessing: true) : Results.NotFound());
        app.MapGet("/boot/initrd", () => images.Initrd is { } initrd ? Results.File(initrd, "application/octet-stream", enableRangeProcessing: true) : Results.NotFound());
        app.MapGet("/boot/images/{sha256}", (string sha256) => images.PathOf(sha256) is { } part ? Results.File(part, "application/octet-stream", enableRangeProcessing: true) : Results.NotFound());
        await app.StartAsync(cancellationToken);
        var bound = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var boundPort = new Uri(bound.Replace("[::]", "localhost", StringComparison.Ordinal)).Port;
        return new BootServer(app, new Uri($"http://{address}:{boundPort}/"));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
