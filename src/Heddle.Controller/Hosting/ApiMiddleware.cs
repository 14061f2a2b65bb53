using Heddle.Controller.Api;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Controller.Hosting;

/// <summary>
/// What every request meets before its endpoint, in order: the two ports kept apart, a store that cannot take a write
/// turned into a sentence and 503, the caller authenticated and kept to its scope, and a small limit on JSON bodies.
/// </summary>
internal static class ApiMiddleware
{
    /// <summary>The largest JSON body the API reads: a 1 MiB configuration, escaped, with room to spare.</summary>
    internal const long MaxJsonBodyBytes = 4L << 20;

    public static void Use(WebApplication app, ControllerListeners listeners)
    {
        var tokens = app.Services.GetRequiredService<Tokens>();
        app.Use((context, next) => Ports.Separate(context, next, listeners.Api, listeners.Agent));
        app.Use(async (context, next) =>
        {
            // A store that cannot take a write (etcd without a quorum) is the one thing every write can meet: a sentence
            // and 503, nothing half done (each write is one commit). Reads answer from this controller's copy meanwhile.
            try
            {
                await next(context);
            }
            catch (Store.Kv.KvUnavailableException e) when (!context.Response.HasStarted)
            {
                context.Response.Clear();
                await Problems.Problem(StatusCodes.Status503ServiceUnavailable, Heddle.Contracts.Api.ProblemTypes.StoreUnavailable, "Store unavailable",
                    $"{e.Message}; nothing was changed: try again when the store is back").ExecuteAsync(context);
            }
        });
        app.Use(async (context, next) =>
        {
            // The CA certificate is public: `heddle login --ca-hash` fetches it before it has anything to trust.
            if (!context.Request.Path.StartsWithSegments("/v1") || (HttpMethods.IsGet(context.Request.Method) && context.Request.Path.Equals(ApiEndpoints.CaPath)))
            {
                await next(context);
                return;
            }

            // A boot token (what `heddle boot` holds on a provisioning host) opens /v1/boot and nothing else.
            var header = context.Request.Headers.Authorization.ToString();
            if ((context.Request.Path.StartsWithSegments("/v1/boot") ? tokens.AuthenticateBoot(header) : tokens.Authenticate(header)) is not { } caller)
            {
                await Problems.Unauthorized(context.Request.Headers.Authorization.Count > 0).ExecuteAsync(context);
                return;
            }

            if (!caller.IsAdmin && Scopes.AdminOnly(context.Request))
            {
                await Problems.Forbidden($"this is a cluster-wide operation; a token of {caller} cannot use it (ask an admin)").ExecuteAsync(context);
                return;
            }

            context.Items[typeof(Caller)] = caller;
            await next(context);
        });
        app.Use(async (context, next) =>
        {
            // Package, image and host image part uploads stream to disk under their own limits; every other API body is a small JSON
            // document (a configuration is at most 1 MiB), so a huge one is cut off at the door, not buffered.
            if (context.Request.Path.StartsWithSegments("/v1") && !IsUpload(context.Request)
                && context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = MaxJsonBodyBytes;
            }

            await next(context);
        });
    }

    private static bool IsUpload(HttpRequest request) => HttpMethods.IsPut(request.Method)
        && (request.Path.StartsWithSegments("/v1/packages") || request.Path.StartsWithSegments("/v1/images") || request.Path.StartsWithSegments("/v1/hostimages/blobs"));
}
