using System.Text.Json;
using Heddle.Contracts.Trust;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Trust;

/// <summary>
/// Controllers that share a store are one cluster with one certificate authority: an agent enrolled by one is trusted by
/// every other, and a client configuration works against any of them. The CA's key lives only on the controllers'
/// disks (ca.key, mode 0600, in each state folder); the store keeps the CA certificate alone, under <c>secrets/ca</c>,
/// so that controllers can check they agree. The first controller to start makes the CA in its state folder (or uses
/// the one already there, from `heddle ca create`) and puts its certificate in the store; every other controller must be
/// given ca.crt and ca.key by the operator before it starts, and one without them, or with another cluster's, is
/// refused with a sentence saying so.
/// </summary>
/// <remarks>
/// Why not the key in the store, encrypted with a key only controllers hold (kubeadm's --upload-certs)? A controller
/// joining a cluster whose etcd asks for client certificates (issued by this CA) has to be handed files by the
/// operator anyway, so the CA's two files travel the same way (kubeadm's manual certificate distribution), and the store
/// never holds anything that signs certificates, however well wrapped. Older versions kept the key in the store in
/// clear: a controller that finds it there removes it (taking it into its own folder first when it has no CA yet).
/// </remarks>
public static class SharedAuthority
{
    private const string Key = "secrets/ca";

    /// <summary>What the store holds: the CA certificate (PEM). PrivateKey is only ever read, from a store written by an older version.</summary>
    private sealed record StoredAuthority(string Certificate, string? PrivateKey = null);

    /// <summary>Checks that this controller's CA is the cluster's (putting its certificate in the store when it is the first); true if a key in clear was removed from the store.</summary>
    public static async Task<bool> ShareAsync(KvMirror mirror, string stateDirectory, CancellationToken cancellationToken)
    {
        var certificatePath = Path.Combine(stateDirectory, "ca.crt");
        var keyPath = Path.Combine(stateDirectory, "ca.key");
        var removedKey = false;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            if (mirror.Get(Key) is { } entry)
            {
                var shared = JsonSerializer.Deserialize<StoredAuthority>(entry.Value)!;
                if (shared.PrivateKey is not null)
                {
                    if (!File.Exists(certificatePath) && !File.Exists(keyPath))
                    {
                        // The way of older versions, once: this folder takes the CA the store held in clear.
                        PrivateFile.Write(keyPath, shared.PrivateKey);
                        File.WriteAllText(certificatePath, shared.Certificate);
                    }

                    var removed = await mirror.CommitAsync([new KvCondition(Key, entry.ModRevision)],
                        [KvWrite.Put(Key, JsonSerializer.SerializeToUtf8Bytes(new StoredAuthority(shared.Certificate)))], cancellationToken);
                    removedKey |= removed.Succeeded;
                    continue; // read what the store holds now
                }

                if (File.Exists(certificatePath) && File.ReadAllText(certificatePath).Trim() != shared.Certificate.Trim())
                {
                    throw new InvalidOperationException(
                        $"{stateDirectory} holds the CA of another cluster than the store's (ca.crt differs from the one in the store): give this controller the cluster's ca.crt and ca.key, or an empty state folder with them");
                }

                if (!File.Exists(certificatePath) || !File.Exists(keyPath))
                {
                    throw new InvalidOperationException(Missing(stateDirectory));
                }

                return removedKey;
            }

            if (File.Exists(certificatePath) != File.Exists(keyPath))
            {
                throw new InvalidOperationException($"{stateDirectory} holds only one of ca.crt and ca.key: copy both from the state folder of a controller of this cluster");
            }

            var made = !File.Exists(certificatePath);
            using (CertificateAuthority.LoadOrCreate(stateDirectory, TimeProvider.System))
            {
            }

            var mine = new StoredAuthority(File.ReadAllText(certificatePath));
            var put = await mirror.CommitAsync([new KvCondition(Key, 0)], [KvWrite.Put(Key, JsonSerializer.SerializeToUtf8Bytes(mine))], cancellationToken);
            if (put.Succeeded)
            {
                return removedKey;
            }

            if (made)
            {
                // Another controller shared its CA first: the one just made here gives way, and this controller needs the cluster's.
                File.Delete(certificatePath);
                File.Delete(keyPath);
            }
        }

        throw new KvUnavailableException("store busy: the cluster CA could not be agreed on");
    }

    private static string Missing(string stateDirectory) =>
        $"{stateDirectory} has no cluster CA (ca.crt and ca.key), and the controllers sharing this store have one: copy ca.crt and ca.key (keep ca.key mode 0600) "
        + $"from the state folder of a controller of this cluster (the first one made them, or 'heddle ca create' did) into {stateDirectory}, then start this controller again. "
        + "The store keeps only the CA's certificate, never its key";
}
