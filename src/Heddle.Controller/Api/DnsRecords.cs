using System.Text.Json;
using System.Threading.Channels;
using Heddle.Contracts.Api;
using Heddle.Controller.Dns;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>GET /v1/dns/records[?follow=true]: the DNS record set, or a stream of it (server-sent events, one whole set per change).</summary>
internal static class DnsRecords
{
    public static async Task<IResult> GetAsync(HttpContext context, DnsRecordSource source, bool? follow)
    {
        if (follow != true)
        {
            return Results.Ok(source.Current);
        }

        var changes = Channel.CreateBounded<DnsRecordSet>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
        void OnChange(DnsRecordSet set) => changes.Writer.TryWrite(set);
        source.Changed += OnChange;
        try
        {
            var response = context.Response;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            changes.Writer.TryWrite(source.Current);
            await foreach (var set in changes.Reader.ReadAllAsync(context.RequestAborted))
            {
                await response.WriteAsync($"id: {set.Serial}\ndata: {JsonSerializer.Serialize(set, ApiEndpoints.Json)}\n\n", context.RequestAborted);
                await response.Body.FlushAsync(context.RequestAborted);
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
