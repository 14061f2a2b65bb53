using System.Collections.Concurrent;
using Heddle.Agent.Packages;

namespace Heddle.Agent.Hollow;

/// <summary>
/// The package cache of a whole hollow process: each package is fetched and unpacked once, by the first node whose
/// goal state names it (with that node's certificate: the controller hands a blob only to a node that needs it), and
/// every other node takes it from here. Never evicted while the process runs: one node's goal state does not say what
/// the others need. A fetch that fails is forgotten, so the next node to ask tries again.
/// </summary>
public sealed class HollowPackages(string directory)
{
    private readonly ConcurrentDictionary<string, Lazy<Task<CachedPackage>>> _packages = new(StringComparer.Ordinal);

    /// <summary>How many packages were fetched (not taken from the cache).</summary>
    public int Fetched => _packages.Count;

    /// <summary>The package source of one node, which fetches through <paramref name="downloads"/> when it is the first to ask.</summary>
    public IPackageSource For(HttpClient downloads) => new NodePackages(this, downloads);

    private async Task<CachedPackage> GetAsync(string sha256, string relativeUrl, HttpClient downloads, CancellationToken cancellationToken)
    {
        // Not cancelled by the node that asked first: other nodes may be waiting for the same fetch.
        var fetch = _packages.GetOrAdd(sha256, _ => new Lazy<Task<CachedPackage>>(() => new PackageCache(directory, downloads).GetAsync(sha256, relativeUrl, CancellationToken.None)));
        try
        {
            return await fetch.Value.WaitAsync(cancellationToken);
        }
        catch (Exception) when (fetch.Value.IsFaulted)
        {
            _packages.TryRemove(KeyValuePair.Create(sha256, fetch));
            throw;
        }
    }

    private sealed class NodePackages(HollowPackages shared, HttpClient downloads) : IPackageSource
    {
        public Task<CachedPackage> GetAsync(string sha256, string relativeUrl, CancellationToken cancellationToken) =>
            shared.GetAsync(sha256, relativeUrl, downloads, cancellationToken);

        public void Evict(IReadOnlySet<string> needed)
        {
        }
    }
}
