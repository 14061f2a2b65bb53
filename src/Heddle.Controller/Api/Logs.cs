using System.Security.Cryptography.X509Certificates;
using Heddle.Contracts.Trust;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>
/// Instance logs live on their node; the controller proxies them so users need one address and one token. The node's
/// log server takes only the controller's client certificate, and the controller checks the node's.
/// </summary>
internal static class Logs
{
    public const string ClientName = "logs";


    public static async Task ProxyAsync(HttpContext context, string service, string role, int index, Caller caller, IClusterStore store, IHttpClientFactory clients)
    {
        var owner = store.GetService(service)?.Tenant;
        var instance = owner is not null && caller.Owns(owner) ? store.ListInstances(service).FirstOrDefault(i => i.Role == role && i.Index == index) : null;
        var node = instance is null ? null : store.GetNode(instance.Node);
        if (instance is null || node?.LogUrl is null)
        {
            await Problems.NotFound(instance is null ? $"no instance {service}/{role}/{index}" : $"node {instance.Node} serves no logs").ExecuteAsync(context);
            return;
        }

        var url = $"{node.LogUrl.TrimEnd('/')}/logs/{service}/{role}/{index}{context.Request.QueryString}";
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        try
        {
            using var response = await clients.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
            context.Response.StatusCode = (int)response.StatusCode;
            context.Response.ContentType = response.Content.Headers.ContentType?.ToString() ?? "text/plain";
            // The answer starts now, not at the first line: a client bounds its wait for the headers, and a followed log may be quiet.
            await context.Response.StartAsync(context.RequestAborted);
            await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
            var buffer = new byte[16384];
            int read;
            while ((read = await body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
        }
        catch (HttpRequestException e)
        {
            await Problems.Problem(StatusCodes.Status502BadGateway, "https://heddle.dev/problems/node-unreachable", "Node unreachable",
                $"node {node.Name} did not answer for its logs: {e.Message}").ExecuteAsync(context);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
