using System.Net;
using System.Text.Json;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Blobs;

/// <summary>A controller as the others sharing its store know it (under <c>controllers/</c>).</summary>
public sealed record ControllerPeer(string Name, Uri ApiUrl, Uri AgentUrl);

/// <summary>
/// Package and image blobs among controllers that share a store. An upload is acknowledged only once another
/// controller holds a verified copy too (so a controller lost right after it accepted a deployment loses nothing), and
/// a controller asked for a blob it lacks fetches it by hash from the others. Controllers call each other on the agent
/// port with their controller certificates. With one controller (the embedded store) there is no one to copy to.
/// </summary>
public sealed class BlobPeers(BlobStore blobs, OpenedStore store, IHttpClientFactory clients)
{
    public const string ClientName = "blob-peers";
    public const string Prefix = "/agent/v1/peer-blobs/";

    /// <summary>The largest blob a peer takes: as large as a package or an image may be.</summary>
    public static long MaxBytes => Math.Max(Heddle.Model.Packages.PackageLimits.Default.MaxUnpackedBytes, Heddle.Packaging.RootfsLimits.Default.MaxArchiveBytes);

    private KvMirror? Mirror => store.Shared ? store.Mirror : null;

    /// <summary>This controller's name among its peers (set once it listens).</summary>
    public string? Self { get; private set; }

    /// <summary>Says where this controller answers, for the others (and `heddle info`).</summary>
    public async Task RegisterAsync(Uri apiUrl, Uri agentUrl, CancellationToken cancellationToken)
    {
        Self = $"{agentUrl.Host}:{agentUrl.Port}";
        if (Mirror is { } mirror)
        {
            await mirror.CommitAsync([], [KvWrite.Put($"controllers/{Self}", JsonSerializer.SerializeToUtf8Bytes(new ControllerPeer(Self, apiUrl, agentUrl), KvClusterStore.Format))], cancellationToken);
        }
    }

    /// <summary>Every controller registered in the store, this one included; empty on the embedded store.</summary>
    public IReadOnlyList<ControllerPeer> All() =>
        Mirror is { } mirror ? [.. mirror.List("controllers/").Select(e => JsonSerializer.Deserialize<ControllerPeer>(e.Value, KvClusterStore.Format)!)] : [];

    private IEnumerable<ControllerPeer> Others() => All().Where(p => p.Name != Self);

    /// <summary>Copies a verified blob to one other controller; null when one took it (or there is no other), else why none did.</summary>
    public async Task<string?> ReplicateAsync(string sha256, CancellationToken cancellationToken)
    {
        var others = Others().ToList();
        if (others.Count == 0)
        {
            return null;
        }

        var failures = new List<string>();
        using var http = clients.CreateClient(ClientName);
        foreach (var peer in others.OrderBy(_ => Random.Shared.Next()))
        {
            try
            {
                await using var file = File.OpenRead(blobs.PathOf(sha256));
                using var content = new StreamContent(file);
                using var response = await http.PutAsync(new Uri(peer.AgentUrl, Prefix + sha256), content, cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    return null;
                }

                failures.Add($"{peer.Name}: HTTP {(int)response.StatusCode}");
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                failures.Add($"{peer.Name}: {e.Message}");
            }
        }

        return $"stored on this controller only: no other controller took a copy ({string.Join("; ", failures)}); a deployment is accepted once its package is on two controllers, so upload it again when another one is up";
    }

    /// <summary>Fetches a blob this controller lacks from another that has it; true when it is here now, verified.</summary>
    public async Task<bool> FetchAsync(string sha256, CancellationToken cancellationToken)
    {
        using var http = clients.CreateClient(ClientName);
        foreach (var peer in Others())
        {
            try
            {
                using var response = await http.GetAsync(new Uri(peer.AgentUrl, Prefix + sha256), HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    continue;
                }

                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                if (await blobs.PutAsync(sha256, body, MaxBytes, cancellationToken, "blob") is not null)
                {
                    return true;
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or InvalidDataException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // The next peer may have it.
            }
        }

        return blobs.Exists(sha256);
    }

    /// <summary>Leaves the list of controllers (a controller stopping).</summary>
    public async Task DeregisterAsync()
    {
        if (Mirror is { } mirror && Self is not null)
        {
            try
            {
                await mirror.CommitAsync([], [KvWrite.Delete($"controllers/{Self}")]);
            }
            catch (KvUnavailableException)
            {
                // The others find it does not answer.
            }
        }
    }
}
