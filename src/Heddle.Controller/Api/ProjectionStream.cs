using System.Buffers;
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

        if (context.Request.Query["changes"] == "true" && source is IViewChanges changes)
        {
            return await FollowChangesAsync(context, source, changes, lifetime);
        }

        return await StreamAsync(context, source, lifetime, async (view, response, ct) =>
        {
            await WriteAsync(response, view, ct);
            return source.VersionOf(view);
        });
    }

    /// <summary>
    /// A server-sent-events stream of what <paramref name="send"/> makes of each view published (the current one first; a
    /// view published while the last was being sent replaces any not sent yet), which returns the version the follower then
    /// holds. It ends when the client goes or the controller stops (shutdown does not wait for its clients).
    /// </summary>
    private static async Task<IResult> StreamAsync<T>(HttpContext context, StoreProjection<T> source, IHostApplicationLifetime lifetime,
        Func<T, HttpResponse, CancellationToken, Task<long>> send)
        where T : class
    {
        var changes = Channel.CreateBounded<T>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
        void OnChange(T view) => changes.Writer.TryWrite(view);
        source.Changed += OnChange;
        var follower = source.AddFollower();
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        try
        {
            var response = context.Response;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            changes.Writer.TryWrite(source.Current);
            await foreach (var view in changes.Reader.ReadAllAsync(ended.Token))
            {
                source.Delivered(follower, await send(view, response, ended.Token));
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

    /// <summary>
    /// One event: the message's JSON (one line: not indented, newlines escaped) written straight into the response, not
    /// made a string first (each view or change sent to each follower was a string twice its size, then its UTF-8 copy).
    /// </summary>
    private static async Task WriteAsync<TMessage>(HttpResponse response, TMessage message, CancellationToken ct)
    {
        var body = response.BodyWriter;
        body.Write("data: "u8);
        using (var writer = new Utf8JsonWriter(body, new JsonWriterOptions { Encoder = ApiEndpoints.Json.Encoder, SkipValidation = true }))
        {
            JsonSerializer.Serialize(writer, message, ApiEndpoints.Json);
        }

        body.Write("\n\n"u8);
        await body.FlushAsync(ct);
    }

    /// <summary>
    /// ?follow=true&amp;changes=true[&amp;since=V]: the whole view first (or what changed since the version the follower
    /// holds, when this controller still knows it), then what changed at each change: a change of one service costs
    /// its parts on the wire, not the cluster's (issue 27).
    /// </summary>
    private static async Task<IResult> FollowChangesAsync<T>(HttpContext context, StoreProjection<T> source, IViewChanges changes, IHostApplicationLifetime lifetime)
        where T : class
    {
        var origin = context.Request.Query["origin"].ToString();
        var since = long.TryParse(context.Request.Query["since"], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var held) ? held : 0;
        return await StreamAsync(context, source, lifetime, async (_, response, ct) =>
        {
            var version = changes.Version;
            if (version == since && since > 0 && origin == changes.Origin)
            {
                return version; // nothing published since what it holds
            }

            await WriteAsync(response, changes.ChangesSince(origin, since, version), ct);
            (since, origin) = (version, changes.Origin);
            return version;
        });
    }
}
