using System.Globalization;
using Heddle.Controller.Store;
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

    /// <summary>What the pages show from the store. Balancers' records change with every heartbeat (their VIP leases): a page that shows them asks for them, and hears of them at most every <see cref="NoisyEvery"/>.</summary>
    private static readonly RecordKind[] Shown =
        [RecordKind.Service, RecordKind.Instance, RecordKind.Node, RecordKind.Event, RecordKind.Revision, RecordKind.Certificate, RecordKind.Slot];

    private static readonly RecordKind[] Noisy = [RecordKind.Balancer, RecordKind.Vip];

    private static readonly TimeSpan NoisyEvery = TimeSpan.FromSeconds(2);

    /// <summary>The version of what a page shows: it moves on when one of its kinds of record changes, and only then.</summary>
    public static long VersionOf(IClusterStore store, bool noisy = false)
    {
        var version = 0L;
        foreach (var kind in noisy ? Noisy : Shown)
        {
            version = Math.Max(version, store.VersionOf(kind));
        }

        return version;
    }

    /// <summary>A comment this often keeps proxies and the browser from taking a quiet stream for a dead one.</summary>
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static async Task StreamAsync(HttpContext context, IClusterStore store, IHostApplicationLifetime lifetime)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-store";
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var seen = long.TryParse(context.Request.Query["v"], NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1;
        var followNoisy = context.Request.Query["follow"] == "balancers";
        var noisySeen = VersionOf(store, noisy: true);
        var quiet = TimeSpan.Zero;
        var sinceNoisy = TimeSpan.Zero;
        try
        {
            await response.WriteAsync("retry: 1000\n\n", ended.Token);
            await response.Body.FlushAsync(ended.Token);
            using var timer = new PeriodicTimer(Tick);
            do
            {
                var version = VersionOf(store);
                sinceNoisy += Tick;
                var noisy = followNoisy && sinceNoisy >= NoisyEvery && VersionOf(store, noisy: true) != noisySeen;
                if (version != seen || noisy)
                {
                    seen = version;
                    if (noisy)
                    {
                        noisySeen = VersionOf(store, noisy: true);
                        sinceNoisy = TimeSpan.Zero;
                    }

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
