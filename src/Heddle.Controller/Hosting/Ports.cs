using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Heddle.Controller.Hosting;

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
