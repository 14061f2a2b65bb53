using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;
using Heddle.Packaging;

namespace Heddle.Agent.Packages;

/// <summary>A package unpacked on this node: its folder (shared, never written by instances) and its definition.</summary>
public sealed record CachedPackage(string Sha256, string Directory, ServiceDefinition Definition)
{
    public string RoleDirectory(string role) => Path.Combine(Directory, PackageLayout.RolesFolder, role);
}

/// <summary>Where an instance runner gets its package from: <see cref="PackageCache"/> on a real node.</summary>
public interface IPackageSource
{
    /// <summary>The package unpacked on this node, fetched from <paramref name="relativeUrl"/> of the controller when it is not yet.</summary>
    Task<CachedPackage> GetAsync(string sha256, string relativeUrl, CancellationToken cancellationToken);

    /// <summary>Removes unpacked packages that are not in <paramref name="needed"/>.</summary>
    void Evict(IReadOnlySet<string> needed);
}

/// <summary>
/// Packages on this node: downloaded once (resuming with HTTP range requests after an interruption), verified
/// against their SHA-256, unpacked once through the safe extractor, shared by every instance, and evicted when no
/// goal state needs them.
/// </summary>
public sealed class PackageCache(string directory, HttpClient http) : IPackageSource
{
    private readonly string _downloads = Path.Combine(directory, "downloads");
    private readonly string _unpacked = Path.Combine(directory, "packages");
    private readonly Dictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CachedPackage> _ready = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public async Task<CachedPackage> GetAsync(string sha256, string relativeUrl, CancellationToken cancellationToken)
    {
        if (!Sha256Hex.IsValid(sha256))
        {
            throw new PackageCacheException($"'{sha256}' is not a package hash");
        }

        SemaphoreSlim gate;
        lock (_lock)
        {
            if (_ready.TryGetValue(sha256, out var known))
            {
                return known;
            }

            if (!_locks.TryGetValue(sha256, out gate!))
            {
                _locks[sha256] = gate = new SemaphoreSlim(1, 1);
            }
        }

        await gate.WaitAsync(cancellationToken);
        try
        {
            var target = Path.Combine(_unpacked, sha256);
            if (!System.IO.Directory.Exists(target))
            {
                var blob = await BlobDownload.GetAsync(http, _downloads, sha256, relativeUrl, "package", cancellationToken);
                Unpack(blob, target);
                File.Delete(blob);
            }

            var package = new CachedPackage(sha256, target, ReadDefinition(target));
            lock (_lock)
            {
                _ready[sha256] = package;
            }

            return package;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Removes unpacked packages that are not in <paramref name="needed"/>.</summary>
    public void Evict(IReadOnlySet<string> needed)
    {
        if (!System.IO.Directory.Exists(_unpacked))
        {
            return;
        }

        foreach (var dir in System.IO.Directory.EnumerateDirectories(_unpacked))
        {
            var sha = Path.GetFileName(dir);
            if (needed.Contains(sha) || !Sha256Hex.IsValid(sha) || Drivers.Posix.InUseByAMount(dir))
            {
                continue; // a container's root file system may still have its role layer below it
            }

            lock (_lock)
            {
                _ready.Remove(sha);
            }

            try
            {
                System.IO.Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static void Unpack(string blob, string target)
    {
        var diagnostics = new DiagnosticBag();
        using var stream = File.OpenRead(blob);
        using var package = PackageArchive.Open(stream, Path.GetFileName(blob), PackageLimits.Default, diagnostics);
        if (package is null || !PackageExtractor.Extract(package, target, diagnostics))
        {
            throw new PackageCacheException($"the package is refused: {string.Join("; ", diagnostics.Sorted())}");
        }
    }

    private static ServiceDefinition ReadDefinition(string directory)
    {
        var diagnostics = new DiagnosticBag();
        using var reader = File.OpenText(Path.Combine(directory, PackageLayout.ServiceFile));
        return ServiceDefinitionParser.Parse(reader, diagnostics) ?? throw new PackageCacheException($"the cached package's service.yaml is invalid: {string.Join("; ", diagnostics.Sorted())}");
    }
}

public sealed class PackageCacheException(string message) : Exception(message);
