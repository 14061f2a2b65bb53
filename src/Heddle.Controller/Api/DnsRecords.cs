using System.Text.Json;
using System.Threading.Channels;
using Heddle.Contracts.Api;
using Heddle.Controller.Dns;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace Heddle.Controller.Api;

/// <summary>GET /v1/dns/records[?follow=true]: the DNS record set, or a stream of it (server-sent events, one whole set per change).</summary>
internal static class DnsRecords
{
    public static async Task<IResult> GetAsync(HttpContext context, DnsRecordSource source, IHostApplicationLifetime lifetime, bool? follow)
    {
        if (follow != true)
        {
            return Results.Ok(source.Current);
        }

        var changes = Channel.CreateBounded<DnsRecordSet>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
        void OnChange(DnsRecordSet set) => changes.Writer.TryWrite(set);
        source.Changed += OnChange;
        // A stream ends when the controller stops, so shutdown does not wait for its clients.
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        try
        {
            var response = context.Response;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            changes.Writer.TryWrite(source.Current);
            await foreach (var set in changes.Reader.ReadAllAsync(ended.Token))
            {
                await response.WriteAsync($"id: {set.Serial}\ndata: {JsonSerializer.Serialize(set, ApiEndpoints.Json)}\n\n", ended.Token);
                await response.Body.FlushAsync(ended.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            source.Changed -= OnChange;
        }

        return Results.Empty;
    }
}
