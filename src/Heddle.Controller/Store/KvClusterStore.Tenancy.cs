using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>
/// Who holds what is stored once for everyone: packages and images. A package's bytes are one blob and one record,
/// and each tenant that uploaded them has a key of its own (<c>package-owners/&lt;sha256&gt;/&lt;tenant&gt;</c>), so
/// two tenants uploading the same bytes at once never fight over one key. Image names are per tenant: the admin's
/// shared images are <c>images/&lt;name&gt;</c>, a tenant's own <c>tenant-images/&lt;tenant&gt;/&lt;name&gt;</c>. A tenant's
/// image stored before names were per tenant is under <c>images/</c> with its tenant in the record: it stays that
/// tenant's own, found where it is.
/// </summary>
public sealed partial class KvClusterStore
{
    private const string SharedImages = "images/";
    private const string TenantImages = "tenant-images/";

    public async Task AddPackageOwnerAsync(string sha256, string tenant, CancellationToken cancellationToken = default)
    {
        if (!IsPackageOwner(sha256, tenant))
        {
            await CommitAsync([], [Put(PackageOwnerKey(sha256, tenant), new PackageOwner(_time.GetUtcNow()))], cancellationToken);
        }
    }

    public bool IsPackageOwner(string sha256, string tenant) => _mirror.Get(PackageOwnerKey(sha256, tenant)) is not null;

    public async Task<bool> PutImageAsync(ImageRecord image, CancellationToken cancellationToken = default)
    {
        if (GetImage(image.Tenant, image.Name) is { } held)
        {
            return held.Sha256 == image.Sha256;
        }

        var key = image.Tenant is null ? SharedImages + image.Name : $"{TenantImages}{image.Tenant}/{image.Name}";
        await CommitAsync([new KvCondition(key, 0)], [Put(key, image)], cancellationToken);
        return GetImage(image.Tenant, image.Name)?.Sha256 == image.Sha256;
    }

    public ImageRecord? GetImage(string? tenant, string name) => ImageEntry(tenant, name) is { } entry ? Decode<ImageRecord>(entry) : null;

    public IReadOnlyList<ImageRecord> ListImages() => [.. ReadAll<ImageRecord>(SharedImages), .. ReadAll<ImageRecord>(TenantImages)];

    public async Task<bool> DeleteImageAsync(ImageRecord image, CancellationToken cancellationToken = default)
    {
        if (ImageEntry(image.Tenant, image.Name) is not { } entry)
        {
            return false;
        }

        await CommitAsync([], [KvWrite.Delete(entry.Key)], cancellationToken);
        return true;
    }

    /// <summary>The key holding the image of that name in that namespace (null: the shared one), where it is now or where an earlier version put it.</summary>
    private KvEntry? ImageEntry(string? tenant, string name)
    {
        if (tenant is not null && _mirror.Get($"{TenantImages}{tenant}/{name}") is { } own)
        {
            return own;
        }

        return _mirror.Get(SharedImages + name) is { } entry && Decode<ImageRecord>(entry).Tenant == tenant ? entry : null;
    }

    private static string PackageOwnerKey(string sha256, string tenant) => $"package-owners/{sha256}/{tenant}";

    private sealed record PackageOwner(DateTimeOffset Since);
}
