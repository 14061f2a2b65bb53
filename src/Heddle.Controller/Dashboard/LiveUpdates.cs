using System.Globalization;
using Heddle.Controller.Store.Kv;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace Heddle.Controller.Dashboard;

/// <summary>
/// GET /ui/live: server-sent events telling an open page that the store changed, so its script fetches the page's live
/// part again. One message per change of this controller's copy of the store (a burst within a tick is one), looked
/// at every <see cref="Tick"/>: a change reaches the page within a tick and a fetch. Nothing about the change itself is
/// sent: the page asks for what its caller may see.
/// </summary>
internal static class LiveUpdates
{
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(150);

    /// <summary>A comment this often keeps proxies and the browser from taking a quiet stream for a dead one.</summary>
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static async Task StreamAsync(HttpContext context, KvMirror mirror, IHostApplicationLifetime lifetime)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-store";
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var seen = long.TryParse(context.Request.Query["v"], NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1;
        var quiet = TimeSpan.Zero;
        try
        {
            await response.WriteAsync("retry: 1000\n\n", ended.Token);
            await response.Body.FlushAsync(ended.Token);
            using var timer = new PeriodicTimer(Tick);
            do
            {
                var version = mirror.Version;
                if (version != seen)
                {
                    seen = version;
                    quiet = TimeSpan.Zero;
                    await response.WriteAsync($"event: change\ndata: {version}\n\n", ended.Token);
                    await response.Body.FlushAsync(ended.Token);
                }
                else if ((quiet += Tick) >= KeepAlive)
                {
                    quiet = TimeSpan.Zero;
                    await response.WriteAsync(": still here\n\n", ended.Token);
                    await response.Body.FlushAsync(ended.Token);
                }
            }
            while (await timer.WaitForNextTickAsync(ended.Token));
        }
        catch (OperationCanceledException)
        {
        }
    }
}
