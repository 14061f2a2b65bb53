using System.Text.Json;
using Heddle.Controller.Store;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace Heddle.Controller.Api;

/// <summary>GET /v1/events?after=N[&amp;follow=true]: the event log as JSON, or followed live as server-sent events.</summary>
internal static class Events
{
    public static async Task<IResult> GetAsync(HttpContext context, IClusterStore store, EventLog log, IHostApplicationLifetime lifetime, long? after, bool? follow, int? limit)
    {
        if (follow != true)
        {
            return Results.Ok(store.ListEvents(after ?? 0, Math.Clamp(limit ?? 1000, 1, 10_000)));
        }

        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        await response.Body.FlushAsync(context.RequestAborted);
        // A stream ends when the controller stops, so shutdown does not wait for its followers.
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        try
        {
            await foreach (var record in log.FollowAsync(after ?? 0, ended.Token))
            {
                await response.WriteAsync($"id: {record.Id}\ndata: {JsonSerializer.Serialize(record, ApiEndpoints.Json)}\n\n", ended.Token);
                await response.Body.FlushAsync(ended.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }

        return Results.Empty;
    }
}
