using Heddle.Model.Packages;
using Heddle.Packaging;

namespace Heddle.Agent.Packages;

/// <summary>
/// Base images on this node: downloaded on first use, verified against their SHA-256, unpacked once through the safe
/// tar reader into images/&lt;sha256&gt;/rootfs (root's, never written: it is only ever an overlay's lower layer), shared
/// by every container instance, and evicted when no goal state needs them.
/// </summary>
public sealed class ImageCache(string directory, HttpClient http)
{
    private readonly string _downloads = Path.Combine(directory, "downloads");
    private readonly Dictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <returns>The unpacked root file system.</returns>
    public async Task<string> GetAsync(string sha256, string relativeUrl, CancellationToken cancellationToken)
    {
        if (!Sha256Hex.IsValid(sha256))
        {
            throw new PackageCacheException($"'{sha256}' is not an image hash (the controller sent no image for this container role)");
        }

        var target = Path.Combine(directory, sha256, "rootfs");
        if (Directory.Exists(target))
        {
            return target;
        }

        SemaphoreSlim gate;
        lock (_lock)
        {
            if (!_locks.TryGetValue(sha256, out gate!))
            {
                _locks[sha256] = gate = new SemaphoreSlim(1, 1);
            }
        }

        await gate.WaitAsync(cancellationToken);
        try
        {
            if (!Directory.Exists(target))
            {
                Isolation.StateFolders.Create(directory, Isolation.StateFolders.Private);
                var blob = await BlobDownload.GetAsync(http, _downloads, sha256, relativeUrl, "image", cancellationToken);
                try
                {
                    await using var tar = File.OpenRead(blob);
                    Directory.CreateDirectory(Path.Combine(directory, sha256));
                    RootfsArchive.Extract(tar, target, RootfsLimits.Default);
                }
                catch (RootfsArchiveException e)
                {
                    throw new PackageCacheException($"the image is refused: {e.Message}");
                }
                finally
                {
                    File.Delete(blob);
                }
            }

            return target;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Removes unpacked images not in <paramref name="needed"/> (an image a mounted overlay still uses is always needed).</summary>
    public void Evict(IReadOnlySet<string> needed)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }

        foreach (var dir in Directory.EnumerateDirectories(directory))
        {
            var sha = Path.GetFileName(dir);
            if (needed.Contains(sha) || !Sha256Hex.IsValid(sha) || Drivers.Posix.InUseByAMount(dir))
            {
                continue; // a mounted overlay still has it as a lower layer
            }

            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }
}
