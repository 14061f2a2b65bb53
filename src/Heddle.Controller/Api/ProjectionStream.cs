using System.Text.Json;
using System.Threading.Channels;
using Heddle.Controller.Publishing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace Heddle.Controller.Api;

/// <summary>
/// GET of a data-plane view (DNS records, load-balancer configuration): the current one as JSON, or with
/// ?follow=true a server-sent-events stream of whole views, the current one first, then one per change.
/// </summary>
internal static class ProjectionStream
{
    public static async Task<IResult> GetAsync<T>(HttpContext context, StoreProjection<T> source, IHostApplicationLifetime lifetime, bool? follow)
        where T : class
    {
        if (follow != true)
        {
            return Results.Ok(source.Current);
        }

        var changes = Channel.CreateBounded<T>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
        void OnChange(T view) => changes.Writer.TryWrite(view);
        source.Changed += OnChange;
        var follower = source.AddFollower();
        // A stream ends when the controller stops, so shutdown does not wait for its clients.
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        try
        {
            var response = context.Response;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            changes.Writer.TryWrite(source.Current);
            await foreach (var view in changes.Reader.ReadAllAsync(ended.Token))
            {
                await response.WriteAsync($"data: {JsonSerializer.Serialize(view, ApiEndpoints.Json)}\n\n", ended.Token);
                await response.Body.FlushAsync(ended.Token);
                source.Delivered(follower, source.VersionOf(view));
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            source.Changed -= OnChange;
            source.RemoveFollower(follower);
        }

        return Results.Empty;
    }
}
