using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace Heddle.Controller.Api;

/// <summary>
/// GET /v1/events?after=N[&amp;follow=true]: the event log as JSON, or followed live as server-sent events. A tenant
/// sees the events written for it: about its services (each incarnation of each) and its own images. Whose an event
/// is was recorded when it was written, so nothing here looks a name up: another tenant's deleted service of the same
/// name, a node named like a service, or an event another controller sharing the store wrote are judged alike.
/// Nodes, tokens, shared images, leadership, and events written before events had owners, are an admin's to see.
/// </summary>
internal static class Events
{
    public static async Task<IResult> GetAsync(HttpContext context, Caller caller, IClusterStore store, EventLog log, IHostApplicationLifetime lifetime, long? after, bool? follow, int? limit)
    {
        if (follow != true)
        {
            var records = store.ListEvents(after ?? 0, Math.Clamp(limit ?? 1000, 1, 10_000));
            return Results.Ok(caller.IsAdmin ? records : records.Where(e => Sees(caller, e)).ToList());
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
                if (!Sees(caller, record))
                {
                    continue;
                }

                await response.WriteAsync($"id: {record.Id}\ndata: {JsonSerializer.Serialize(record, ApiEndpoints.Json)}\n\n", ended.Token);
                await response.Body.FlushAsync(ended.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }

        return Results.Empty;
    }

    /// <summary>Whether the caller may see an event: an admin every one, a tenant those written for it.</summary>
    internal static bool Sees(Caller caller, EventRecord record) => caller.IsAdmin || (record.Tenant is not null && record.Tenant == caller.Tenant);
}
