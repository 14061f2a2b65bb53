using Heddle.Contracts.Api;
using Heddle.Controller.Blobs;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>
/// PUT /v1/packages/{sha256}: a package upload. The bytes are stored once however many tenants upload them, and owned
/// by each tenant that did (the admin may use any package). A tenant that does not own a package yet must send its
/// bytes, even when another tenant's copy is stored: the answer, and the work done for it, are then the same as for
/// a package nobody uploaded, so an upload (an empty one included) tells a tenant nothing of what others hold.
/// </summary>
internal static class PackageUploads
{
    public static async Task<IResult> PutAsync(string sha256, HttpRequest request, Caller caller, BlobStore blobs, BlobPeers peers, IClusterStore store, IMachineStore machines, TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (!Sha256Hex.IsValid(sha256))
        {
            return Problems.Invalid(ProblemTypes.InvalidPackage, "Bad package id", $"'{sha256}' is not a lower-case hex SHA-256");
        }

        var owned = store.GetPackage(sha256) is not null && (caller.IsAdmin || store.IsPackageOwner(sha256, caller.Tenant!));
        var present = owned && blobs.Exists(sha256);
        if (!present && await StoreAsync(sha256, request, blobs, peers, store, machines, time, cancellationToken) is { } refused)
        {
            return refused;
        }

        if (caller.Tenant is { } tenant)
        {
            await store.AddPackageOwnerAsync(sha256, tenant, cancellationToken);
        }

        var record = store.GetPackage(sha256)!;
        return Results.Ok(new PackageUploaded(sha256, record.Service, record.Bytes, present));
    }

    /// <summary>Receives the bytes, checks their hash and the package, copies it to another controller and records it; the refusal, or null.</summary>
    private static async Task<IResult?> StoreAsync(string sha256, HttpRequest request, BlobStore blobs, BlobPeers peers, IClusterStore store, IMachineStore machines, TimeProvider time,
        CancellationToken cancellationToken)
    {
        long? size;
        try
        {
            size = await blobs.PutAsync(sha256, request.Body, PackageLimits.Default.MaxUnpackedBytes, cancellationToken);
        }
        catch (InvalidDataException e)
        {
            return Problems.Invalid(ProblemTypes.InvalidPackage, "Package too large", e.Message);
        }

        if (size is null)
        {
            return Problems.Invalid(ProblemTypes.HashMismatch, "Hash mismatch", $"the uploaded content does not have SHA-256 {sha256}; upload it again");
        }

        var diagnostics = new DiagnosticBag();
        await using var stream = File.OpenRead(blobs.PathOf(sha256));
        using var package = PackageArchive.Open(stream, $"{sha256[..12]}.hpkg", PackageLimits.Default, diagnostics);
        if (package is null || !package.VerifyContent(diagnostics))
        {
            // An image's blob with the same bytes stays (an image tarball sent as a package is refused, not forgotten).
            BlobReferences.DeleteIfUnnamed(blobs, store, machines, sha256);

            return Problems.Invalid(ProblemTypes.InvalidPackage, "Invalid package", $"the package is refused: {diagnostics.Items.Count} error(s)",
                diagnostics.Sorted().Select(d => d.ToString()));
        }

        // Known to the cluster (and deployable) only once another controller holds a copy too.
        if (await peers.ReplicateAsync(sha256, cancellationToken) is { } unreplicated)
        {
            return Problems.Problem(StatusCodes.Status503ServiceUnavailable, ProblemTypes.NotReplicated, "Package not replicated", unreplicated);
        }

        await store.PutPackageAsync(new PackageRecord(sha256, size.Value, package.Definition.Name, package.ServiceYaml, time.GetUtcNow()), cancellationToken);
        return null;
    }
}
