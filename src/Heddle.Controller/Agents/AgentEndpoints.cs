using Heddle.Controller.Blobs;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Heddle.Controller.Agents;

/// <summary>
/// What agents fetch over HTTP on the agent port: the CA certificate (public; a joining agent checks it against the
/// hash in its join string before it trusts anything), and package and image blobs, each only for a node whose
/// certificate is in force and whose goal state names that blob.
/// </summary>
internal static class AgentEndpoints
{
    public const string BlobPrefix = "/agent/v1/blobs/";

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/agent/v1/ca", (CertificateAuthority ca) => Results.Text(ca.CertificatePem, "application/x-pem-file"));
        app.MapGet(BlobPrefix + "{sha256}", (string sha256, HttpContext context, NodeCertificates certificates, GoalStates goals, BlobStore blobs) =>
        {
            if (certificates.NodeOf(context.Connection.ClientCertificate) is not { } node)
            {
                return Results.Text("a node certificate in force is required\n", statusCode: StatusCodes.Status401Unauthorized);
            }

            // 404 alike for a blob that does not exist and one this node has no business with.
            return goals.Names(node, sha256) && blobs.Exists(sha256)
                ? Results.File(blobs.PathOf(sha256), "application/octet-stream", enableRangeProcessing: true)
                : Results.Text($"node {node} runs nothing that needs blob {Printable.Of(sha256)}\n", statusCode: StatusCodes.Status404NotFound);
        });
    }
}
