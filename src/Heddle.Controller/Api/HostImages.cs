using Heddle.Contracts.Api;
using Heddle.Controller.Blobs;
using Heddle.Controller.HostImages;
using Heddle.Controller.Store;
using Heddle.Model.Packages;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>
/// Host images (admin only): a kernel and an initramfs that machines network-boot into, each kept as a blob named by its
/// SHA-256 in the same blob store as packages and base images (and copied to another controller the same way), under a
/// name that always means the same two parts: a name is never re-pointed, so a machine set to boot it boots what it was
/// set to. The parts are uploaded first (<see cref="PutPartAsync"/>), then named (<see cref="AddAsync"/>). An image a
/// machine is set to boot cannot be deleted. The boot service fetches the parts of the image a boot decision names.
/// </summary>
public sealed class HostImages(IMachineStore machines, IClusterStore store, BlobStore blobs, BlobPeers peers, EventLog events, TimeProvider time)
{
    internal async Task<IResult> PutPartAsync(string sha256, string? part, HttpRequest request, CancellationToken cancellationToken)
    {
        if (!Sha256Hex.IsValid(sha256))
        {
            return Problems.Invalid(ProblemTypes.InvalidImage, "Bad host image part", $"'{Printable.Of(sha256)}' is not a lower-case hex SHA-256; nothing was changed");
        }

        if (part is null || !part.All(char.IsAsciiLetter) || !Enum.TryParse<HostImagePart>(part, ignoreCase: true, out var kind))
        {
            return Problems.Invalid(ProblemTypes.InvalidImage, "Bad host image part", $"part '{Printable.Of(part ?? string.Empty)}' is not one: send ?part=kernel or ?part=initrd; nothing was changed");
        }

        if (blobs.Exists(sha256))
        {
            return ContentError(kind, sha256) is { } known
                ? Problems.Invalid(ProblemTypes.InvalidImage, "Invalid host image part", $"{known}; nothing was changed")
                : Results.Ok(new HostImageBlobUploaded(sha256, new FileInfo(blobs.PathOf(sha256)).Length, AlreadyPresent: true));
        }

        long? size;
        try
        {
            size = await blobs.PutAsync(sha256, request.Body, HostImageRules.MaxBytes(kind), cancellationToken, $"host image {kind.ToString().ToLowerInvariant()}");
        }
        catch (InvalidDataException e)
        {
            return Problems.Invalid(ProblemTypes.InvalidImage, "Host image part too large", $"{e.Message}; nothing was changed");
        }

        if (size is null)
        {
            return Problems.Invalid(ProblemTypes.HashMismatch, "Hash mismatch", $"the uploaded content does not have SHA-256 {sha256}; upload it again");
        }

        if (ContentError(kind, sha256) is { } error)
        {
            BlobReferences.DeleteIfUnnamed(blobs, store, machines, sha256);
            return Problems.Invalid(ProblemTypes.InvalidImage, "Invalid host image part", $"{error}; nothing was changed");
        }

        if (await peers.ReplicateAsync(sha256, cancellationToken) is { } unreplicated)
        {
            return Problems.Problem(StatusCodes.Status503ServiceUnavailable, ProblemTypes.NotReplicated, "Host image part not replicated", unreplicated.Replace("its package", "its host image"));
        }

        return Results.Ok(new HostImageBlobUploaded(sha256, size.Value, AlreadyPresent: false));
    }

    internal async Task<IResult> AddAsync(HostImageAddRequest? request, CancellationToken cancellationToken)
    {
        if (request is null)
        {
            return Problems.Invalid(ProblemTypes.InvalidImage, "Bad host image", "the request carries no host image; send {\"name\": ..., \"kernelSha256\": ..., \"initrdSha256\": ...}; nothing was changed");
        }

        var errors = new List<string>();
        if (HostImageRules.NameError(request.Name) is { } nameError)
        {
            errors.Add(nameError);
        }

        foreach (var (kind, sha256) in new[] { (HostImagePart.Kernel, request.KernelSha256), (HostImagePart.Initrd, request.InitrdSha256) })
        {
            var what = kind.ToString().ToLowerInvariant();
            if (sha256 is null || !Sha256Hex.IsValid(sha256))
            {
                errors.Add($"{what}: '{Printable.Of(sha256 ?? string.Empty)}' is not a lower-case hex SHA-256");
            }
            else if (!blobs.Exists(sha256))
            {
                errors.Add($"{what}: no blob {sha256[..12]} here; upload it first (PUT /v1/hostimages/blobs/{{sha256}}?part={what}; 'heddle hostimage build' does both)");
            }
            else if (ContentError(kind, sha256) is { } error)
            {
                errors.Add(error);
            }
        }

        if (request.KernelRelease is { } release && (release.Length > 128 || !release.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '+')))
        {
            errors.Add($"kernel release '{Printable.Of(release)}' is not one (as uname -r prints it)");
        }

        if (errors.Count > 0)
        {
            return Problems.Invalid(ProblemTypes.InvalidImage, "Bad host image", $"{string.Join("; ", errors)}; nothing was changed", errors);
        }

        if (machines.GetHostImage(request.Name) is { } existing)
        {
            return existing.KernelSha256 == request.KernelSha256 && existing.InitrdSha256 == request.InitrdSha256
                ? Results.Ok(new HostImageAdded(Status(existing), AlreadyPresent: true))
                : Taken(request.Name);
        }

        var record = new HostImageRecord(request.Name, request.KernelSha256, new FileInfo(blobs.PathOf(request.KernelSha256)).Length,
            request.InitrdSha256, new FileInfo(blobs.PathOf(request.InitrdSha256)).Length, request.KernelRelease, time.GetUtcNow());
        if (!await machines.AddHostImageAsync(record, cancellationToken))
        {
            return Taken(request.Name);
        }

        await events.AddAsync(EventKind.HostImageAdded, record.Name,
            $"host image {record.Name} added: kernel {record.KernelSha256[..12]} ({record.KernelRelease ?? "release not given"}, {record.KernelBytes >> 20} MiB), initramfs {record.InitrdSha256[..12]} ({record.InitrdBytes >> 20} MiB)",
            cancellationToken: cancellationToken);
        return Results.Ok(new HostImageAdded(Status(record), AlreadyPresent: false));
    }

    internal IResult List() => Results.Ok(machines.ListHostImages().Select(Status).ToList());

    internal async Task<IResult> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        var image = machines.GetHostImage(name);
        switch (await machines.DeleteHostImageAsync(name, cancellationToken))
        {
            case HostImageDeleteOutcome.Missing:
                return Unknown(name);
            case HostImageDeleteOutcome.InUse:
                var users = machines.ListMachines().Where(m => m.HostImage == name).Select(m => m.Name).ToList();
                return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Host image in use",
                    $"host image {name} is the one machine{(users.Count == 1 ? string.Empty : "s")} {string.Join(", ", users)} {(users.Count == 1 ? "is" : "are")} set to boot; remove {(users.Count == 1 ? "it" : "them")} ('heddle machine remove') first; nothing was changed");
        }

        BlobReferences.DeleteIfUnnamed(blobs, store, machines, image!.KernelSha256);
        BlobReferences.DeleteIfUnnamed(blobs, store, machines, image.InitrdSha256);
        await events.AddAsync(EventKind.HostImageDeleted, name, $"host image {name} deleted", cancellationToken: cancellationToken);
        return Results.NoContent();
    }

    /// <summary>GET /v1/boot/images/{sha256} (a boot token's): a part of a host image, and nothing else of the blob store.</summary>
    internal async Task<IResult> ServePartAsync(string sha256, CancellationToken cancellationToken)
    {
        if (!machines.ListHostImages().Any(i => i.KernelSha256 == sha256 || i.InitrdSha256 == sha256))
        {
            return Problems.NotFound($"no host image has a part {Printable.Of(sha256)}");
        }

        return blobs.Exists(sha256) || await peers.FetchAsync(sha256, cancellationToken)
            ? Results.File(blobs.PathOf(sha256), "application/octet-stream", enableRangeProcessing: true)
            : Problems.Problem(StatusCodes.Status503ServiceUnavailable, ProblemTypes.NotReplicated, "Host image part missing", $"no controller holds blob {sha256[..12]} now; try again");
    }

    /// <summary>A host image unknown by that name: the names there are.</summary>
    internal IResult Unknown(string name)
    {
        var names = machines.ListHostImages().Select(i => i.Name).ToList();
        return Problems.NotFound($"no host image '{Printable.Of(name)}'{(names.Count == 0 ? "; there are none: 'heddle hostimage build NAME' makes one" : $"; host images: {string.Join(", ", names)}")}; nothing was changed");
    }

    private HostImageStatus Status(HostImageRecord image) => new(image.Name, image.KernelSha256, image.KernelBytes, image.InitrdSha256, image.InitrdBytes, image.KernelRelease, image.Added,
        [.. machines.ListMachines().Where(m => m.HostImage == image.Name).Select(m => m.Name)],
        [.. store.ListNodes().Where(n => n.HostImage == image.Name).Select(n => n.Name).Order(StringComparer.Ordinal)]);

    private static IResult Taken(string name) => Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Host image name taken",
        $"host image {name} already holds other parts; names are never re-pointed, so machines set to boot it keep what they were set to: build it under a new name (such as {name}-2), or 'heddle hostimage delete {name}' first if no machine is set to boot it");

    /// <summary>Why a stored blob is not that part, or null.</summary>
    private string? ContentError(HostImagePart kind, string sha256)
    {
        var head = new byte[4096];
        using var file = File.OpenRead(blobs.PathOf(sha256));
        var read = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return HostImageRules.ContentError(kind, head.AsSpan(0, read));
    }
}
