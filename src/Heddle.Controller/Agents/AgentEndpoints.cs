using Heddle.Controller.Blobs;
using Heddle.Model.Packages;
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

    private static bool IsController(HttpContext context, CertificateAuthority ca) =>
        context.Connection.ClientCertificate is { } certificate
        && Heddle.Contracts.Trust.ClusterTrust.Is(certificate, ca.Certificate, Heddle.Contracts.Trust.ClusterTrust.ClientAuth, Heddle.Contracts.Trust.ClusterTrust.ControllerUnit);

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/agent/v1/ca", (CertificateAuthority ca) => Results.Text(ca.CertificatePem, "application/x-pem-file"));
        app.MapGet(BlobPrefix + "{sha256}", async (string sha256, HttpContext context, NodeCertificates certificates, GoalStates goals, BlobStore blobs, BlobPeers peers) =>
        {
            if (certificates.NodeOf(context.Connection.ClientCertificate) is not { } node)
            {
                return Results.Text("a node certificate in force is required\n", statusCode: StatusCodes.Status401Unauthorized);
            }

            // 404 alike for a blob that does not exist and one this node has no business with. A blob uploaded through
            // another controller is fetched from it first.
            return goals.Names(node, sha256) && (blobs.Exists(sha256) || await peers.FetchAsync(sha256, context.RequestAborted))
                ? Results.File(blobs.PathOf(sha256), "application/octet-stream", enableRangeProcessing: true)
                : Results.Text($"node {node} runs nothing that needs blob {Printable.Of(sha256)}\n", statusCode: StatusCodes.Status404NotFound);
        });

        // Controllers sharing a store copy blobs to and from each other, proving themselves with their controller certificates.
        app.MapGet(BlobPeers.Prefix + "{sha256}", (string sha256, HttpContext context, CertificateAuthority ca, BlobStore blobs) =>
            !IsController(context, ca) ? Results.Text("a controller certificate is required\n", statusCode: StatusCodes.Status401Unauthorized)
            : Sha256Hex.IsValid(sha256) && blobs.Exists(sha256) ? Results.File(blobs.PathOf(sha256), "application/octet-stream")
            : Results.Text($"no blob {Printable.Of(sha256)} here\n", statusCode: StatusCodes.Status404NotFound));
        app.MapPut(BlobPeers.Prefix + "{sha256}", async (string sha256, HttpContext context, CertificateAuthority ca, BlobStore blobs) =>
        {
            if (!IsController(context, ca))
            {
                return Results.Text("a controller certificate is required\n", statusCode: StatusCodes.Status401Unauthorized);
            }

            if (!Sha256Hex.IsValid(sha256))
            {
                return Results.Text($"'{Printable.Of(sha256)}' is not a lower-case hex SHA-256\n", statusCode: StatusCodes.Status400BadRequest);
            }

            try
            {
                return blobs.Exists(sha256) || await blobs.PutAsync(sha256, context.Request.Body, BlobPeers.MaxBytes, context.RequestAborted, "blob") is not null
                    ? Results.NoContent()
                    : Results.Text($"the content does not have SHA-256 {sha256}\n", statusCode: StatusCodes.Status400BadRequest);
            }
            catch (InvalidDataException e)
            {
                return Results.Text(e.Message + "\n", statusCode: StatusCodes.Status413PayloadTooLarge);
            }
        });
    }
}
