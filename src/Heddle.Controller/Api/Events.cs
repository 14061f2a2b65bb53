using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace Heddle.Controller.Api;

/// <summary>
/// GET /v1/events?after=N[&amp;follow=true]: the event log as JSON, or followed live as server-sent events. A tenant
/// sees the events of its own services and images only; nodes, tokens and other tenants are an admin's to see.
/// </summary>
internal static class Events
{
    public static async Task<IResult> GetAsync(HttpContext context, Caller caller, IClusterStore store, EventLog log, IHostApplicationLifetime lifetime, long? after, bool? follow, int? limit)
    {
        if (follow != true)
        {
            var records = store.ListEvents(after ?? 0, Math.Clamp(limit ?? 1000, 1, 10_000));
            return Results.Ok(caller.IsAdmin ? records : records.Where(Visibility(store, caller)).ToList());
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
                if (!caller.IsAdmin && !Visibility(store, caller)(record))
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

    /// <summary>Whether an event is about something the tenant owns: its subject (a service, a deployment key, an instance id or an image) is one of its own.</summary>
    private static Func<EventRecord, bool> Visibility(IClusterStore store, Caller caller)
    {
        var own = ApiEndpoints.Visible(store, caller).SelectMany(s => new[] { s.Name, s.Family }).ToHashSet(StringComparer.Ordinal);
        var images = store.ListImages().Where(i => i.Tenant == caller.Tenant).Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        return e => own.Contains(e.Subject.Split('/')[0]) || images.Contains(e.Subject);
    }
}
