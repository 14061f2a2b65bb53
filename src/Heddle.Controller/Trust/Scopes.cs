using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Heddle.Controller.Trust;

/// <summary>
/// What a tenant token may not do: everything cluster-wide (nodes, tokens, the data plane's feeds, raw package
/// content) and changing quotas (a tenant reads its own; <c>Api/QuotaEndpoints</c> keeps it to that).
/// </summary>
internal static class Scopes
{
    public static bool AdminOnly(HttpRequest request)
    {
        var path = request.Path;
        var get = HttpMethods.IsGet(request.Method);
        return path.StartsWithSegments("/v1/nodes") || path.StartsWithSegments("/v1/tokens") || path.StartsWithSegments("/v1/dns")
            || path.StartsWithSegments("/v1/lb") || (get && path.StartsWithSegments("/v1/packages")) || (!get && path.StartsWithSegments("/v1/quotas"));
    }
}

/// <summary>Keeps the two ports apart: the agent port serves only the agents' gRPC service and /agent/, the API port never does.</summary>
internal static class Ports
{
    public static Task Separate(HttpContext context, RequestDelegate next, ListenOptions api, ListenOptions agent)
    {
        var path = context.Request.Path;
        var agentPath = path.StartsWithSegments("/heddle.agents.v1.AgentService") || path.StartsWithSegments("/agent");
        var onAgentPort = context.Connection.LocalPort == agent.IPEndPoint!.Port && api.IPEndPoint!.Port != agent.IPEndPoint.Port;
        if (agentPath != onAgentPort)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }

        return next(context);
    }
}
