using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Trust;

/// <summary>
/// What a tenant token may not do: everything cluster-wide (nodes, machines, host images, boot decisions, tokens, the data plane's feeds, raw package
/// content) and changing quotas (a tenant reads its own; <c>Api/QuotaEndpoints</c> keeps it to that).
/// </summary>
internal static class Scopes
{
    public static bool AdminOnly(HttpRequest request)
    {
        var path = request.Path;
        var get = HttpMethods.IsGet(request.Method);
        return path.StartsWithSegments("/v1/nodes") || path.StartsWithSegments("/v1/machines") || path.StartsWithSegments("/v1/hostimages") || path.StartsWithSegments("/v1/hostrollout") || path.StartsWithSegments("/v1/boot") || path.StartsWithSegments("/v1/tokens") || path.StartsWithSegments("/v1/dns")
            || path.StartsWithSegments("/v1/lb") || (get && path.StartsWithSegments("/v1/packages")) || (!get && path.StartsWithSegments("/v1/quotas"));
    }
}
