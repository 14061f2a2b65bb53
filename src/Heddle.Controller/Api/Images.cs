using System.Text.RegularExpressions;
using Heddle.Contracts.Api;
using Heddle.Controller.Blobs;
using Heddle.Controller.Store;
using Heddle.Model.Packages;
using Heddle.Packaging;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>
/// Base images for container roles: root file system tarballs kept as content-addressed blobs (like packages), each
/// under a name that always means the same content. A name is never re-pointed (a new build takes a new name, and
/// a new package names it), so a revision's image cannot change under it; an image that a kept revision of any
/// service names cannot be deleted. Names are per tenant: an admin's images are shared (every tenant sees and uses
/// them, none can write them), a tenant's are its own and seen by no other tenant. A tenant cannot take a shared
/// image's name (see <see cref="ImageNames"/> for what a role's `image:` means).
/// </summary>
public sealed partial class Images(IClusterStore store, IMachineStore machines, BlobStore blobs, BlobPeers peers, ServiceModels models, EventLog events, TimeProvider time)
{
    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex NamePattern();

    internal static string? NameError(string name) => NamePattern().IsMatch(name)
        ? null
        : $"'{name}' is not an image name: use 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit (for example debian-12)";

    internal async Task<IResult> PutAsync(string name, string? sha256, HttpRequest request, Trust.Caller caller, CancellationToken cancellationToken)
    {
        if (NameError(name) is { } error)
        {
            return Problems.Invalid(ProblemTypes.InvalidImage, "Bad image name", error);
        }

        if (sha256 is null || !Sha256Hex.IsValid(sha256))
        {
            return Problems.Invalid(ProblemTypes.InvalidImage, "Bad image id", $"'{sha256}' is not a lower-case hex SHA-256; send ?sha256=<the tarball's SHA-256>");
        }

        if (!caller.IsAdmin && store.GetImage(null, name) is not null)
        {
            return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Image name taken",
                $"{name} is a shared image's name (an admin's, for every tenant): use it as it is with 'image: {name}', or import yours under another name; nothing was changed");
        }

        if (store.GetImage(caller.Tenant, name) is { } existing)
        {
            return existing.Sha256 == sha256
                ? Results.Ok(new ImageImported(name, sha256, existing.Bytes, existing.Files, 0, 0, 0, AlreadyPresent: true))
                : Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Image name taken",
                    $"image {name} already holds other content ({existing.Sha256[..12]}); names are never re-pointed, so running services keep their image: import it under a new name (such as {name}-2) and name that in the package, or 'heddle image delete {name}' first if no service uses it");
        }

        long? size;
        try
        {
            size = await blobs.PutAsync(sha256, request.Body, RootfsLimits.Default.MaxArchiveBytes, cancellationToken, "image");
        }
        catch (InvalidDataException e)
        {
            return Problems.Invalid(ProblemTypes.InvalidImage, "Image too large", e.Message);
        }

        if (size is null)
        {
            return Problems.Invalid(ProblemTypes.HashMismatch, "Hash mismatch", $"the uploaded content does not have SHA-256 {sha256}; upload it again");
        }

        RootfsSummary summary;
        try
        {
            await using var tar = File.OpenRead(blobs.PathOf(sha256));
            summary = RootfsArchive.Check(tar, RootfsLimits.Default);
        }
        catch (RootfsArchiveException e)
        {
            BlobReferences.DeleteIfUnnamed(blobs, store, machines, sha256);
            return Problems.Invalid(ProblemTypes.InvalidImage, "Invalid image", $"the image is refused: {e.Message}; nothing was changed");
        }

        if (await peers.ReplicateAsync(sha256, cancellationToken) is { } unreplicated)
        {
            return Problems.Problem(StatusCodes.Status503ServiceUnavailable, ProblemTypes.NotReplicated, "Image not replicated", unreplicated.Replace("its package", "its package or image"));
        }

        // An admin's image is shared: every tenant's services may run in it. A tenant's is its own.
        if (!await store.PutImageAsync(new ImageRecord(name, sha256, size.Value, summary.Files, time.GetUtcNow(), caller.Tenant), cancellationToken))
        {
            return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Image name taken", $"image {name} was imported with other content meanwhile; import it under a new name");
        }

        await events.AddAsync(EventKind.ImageImported, name, $"image {name} imported: {sha256[..12]}, {summary.Files} files, {summary.Bytes >> 20} MiB{(summary.DevicesSkipped > 0 ? $", {summary.DevicesSkipped} device files left out" : string.Empty)}", caller.Tenant is { } tenant ? new EventOwner(tenant, null) : null);
        return Results.Ok(new ImageImported(name, sha256, size.Value, summary.Files, summary.Directories, summary.Links, summary.DevicesSkipped, AlreadyPresent: false));
    }

    internal IResult List(Trust.Caller caller) =>
        Results.Ok(Usable(caller).Select(i => new ImageStatus(i.Name, i.Sha256, i.Bytes, i.Files, i.Added, UsedBy(i, caller)) { Tenant = i.Tenant }).ToList());

    /// <summary>The images a caller may see: every one for an admin; the shared ones and its own for a tenant.</summary>
    internal IEnumerable<ImageRecord> Usable(Trust.Caller caller) => store.ListImages().Where(i => i.Tenant is null || caller.Owns(i.Tenant));

    /// <summary>Deletes a tenant's own image, or (an admin) a shared one, or with <paramref name="tenant"/> a tenant's.</summary>
    internal async Task<IResult> DeleteAsync(string name, string? tenant, Trust.Caller caller)
    {
        if (!caller.IsAdmin && tenant is not null && tenant != caller.Tenant)
        {
            return Unknown(name, caller);
        }

        var image = store.GetImage(caller.Tenant ?? tenant, name);
        if (image is null)
        {
            return !caller.IsAdmin && store.GetImage(null, name) is not null
                ? Problems.Forbidden($"image {name} is shared by every tenant; only an admin can delete it")
                : Unknown(name, caller);
        }

        var users = UsedBy(image, Trust.Caller.Admin);
        if (users.Count > 0)
        {
            return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Image in use",
                $"image {name} is named by kept revisions of {string.Join(", ", users)}; delete those services (or let newer revisions push the old ones out of their history) first; nothing was changed");
        }

        await store.DeleteImageAsync(image);
        BlobReferences.DeleteIfUnnamed(blobs, store, machines, image.Sha256);

        await events.AddAsync(EventKind.ImageDeleted, name, $"image {name} ({image.Sha256[..12]}) deleted", EventOwner.Of(image));
        return Results.NoContent();
    }

    /// <summary>The services (of those the caller sees) with a kept revision whose package names the image, as the service's tenant resolves the name.</summary>
    private List<string> UsedBy(ImageRecord image, Trust.Caller caller) =>
        [.. ApiEndpoints.Visible(store, caller)
            .Where(s => ImageNames.Resolve(store, s.Tenant, image.Name)?.Tenant == image.Tenant
                && store.ListRevisions(s.Name).Any(r => models.For(r.PackageSha256, r.Configuration)?.Definition.Roles.Any(role => role.Image == image.Name) == true))
            .Select(s => s.Name).Order(StringComparer.Ordinal)];

    internal IResult Unknown(string name, Trust.Caller caller)
    {
        var names = Usable(caller).Select(i => i.Name).ToList();
        var nearest = Heddle.Model.Validation.Suggestions.Nearest(name, names);
        return Problems.NotFound($"no image '{name}'{(nearest is not null ? $"; did you mean '{nearest}'?" : names.Count == 0 ? "; the cluster has no images: add one with 'heddle image build' or 'heddle image import'" : $"; images: {string.Join(", ", names)}")}");
    }
}
