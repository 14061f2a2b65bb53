using System.Text.Json;
using Heddle.Contracts.Trust;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Trust;

/// <summary>
/// Controllers that share a store are one cluster with one certificate authority: an agent enrolled by one is trusted by
/// every other, and a client configuration works against any of them. The first controller to start puts its CA
/// (made in its state folder as for one controller) under <c>secrets/ca</c>, created on condition that none is there;
/// every other one writes that CA into its own state folder before it starts serving. A state folder that already holds
/// the CA of another cluster is refused with a sentence rather than silently replaced.
/// </summary>
/// <remarks>The CA key is kept in the store as it is in the state folder: whoever can read the etcd keys under /heddle/ can sign node certificates.</remarks>
public static class SharedAuthority
{
    private const string Key = "secrets/ca";

    private sealed record StoredAuthority(string Certificate, string PrivateKey);

    public static async Task ShareAsync(KvMirror mirror, string stateDirectory, CancellationToken cancellationToken)
    {
        var certificatePath = Path.Combine(stateDirectory, "ca.crt");
        var keyPath = Path.Combine(stateDirectory, "ca.key");
        for (var attempt = 0; attempt < 3; attempt++)
        {
            if (mirror.Get(Key) is { } entry)
            {
                var shared = JsonSerializer.Deserialize<StoredAuthority>(entry.Value)!;
                if (File.Exists(certificatePath) && File.ReadAllText(certificatePath).Trim() != shared.Certificate.Trim())
                {
                    throw new InvalidOperationException(
                        $"{stateDirectory} holds the CA of another cluster than the store's (ca.crt differs from the one in the store): give this controller an empty state folder");
                }

                PrivateFile.Write(keyPath, shared.PrivateKey);
                File.WriteAllText(certificatePath, shared.Certificate);
                return;
            }

            using (CertificateAuthority.LoadOrCreate(stateDirectory, TimeProvider.System))
            {
            }

            var mine = new StoredAuthority(File.ReadAllText(certificatePath), File.ReadAllText(keyPath));
            var put = await mirror.CommitAsync([new KvCondition(Key, 0)], [KvWrite.Put(Key, JsonSerializer.SerializeToUtf8Bytes(mine))], cancellationToken);
            if (put.Succeeded)
            {
                return;
            }

            // Another controller shared its CA first: this folder's fresh one gives way to it.
            File.Delete(certificatePath);
            File.Delete(keyPath);
        }

        throw new KvUnavailableException("store busy: the cluster CA could not be agreed on");
    }
}
