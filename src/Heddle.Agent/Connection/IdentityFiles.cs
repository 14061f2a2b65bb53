using Heddle.Contracts.Trust;

namespace Heddle.Agent.Connection;

/// <summary>
/// The node's key, certificate and CA on disk (node.key, node.crt, ca.crt), replaced as one: a crash at any line of a
/// renewal leaves either the old three or the new three, never a key beside a certificate it does not match (which
/// would lock the node out until it enrolled again). The new files are written beside the old as *.new, the
/// certificate last: its arrival is the commit. Then each is renamed over its old file, the certificate last.
/// <see cref="Recover"/>, run before the files are read, finishes a commit a crash interrupted or drops one that never
/// happened.
/// </summary>
public static class IdentityFiles
{
    private const string Pending = ".new";

    public static (string Certificate, string Key, string Ca) Paths(string directory) =>
        (Path.Combine(directory, "node.crt"), Path.Combine(directory, "node.key"), Path.Combine(directory, "ca.crt"));

    public static void Save(string directory, string keyPem, string certificatePem, string caPem)
    {
        Directory.CreateDirectory(directory);
        var (certificate, key, ca) = Paths(directory);
        PrivateFile.Write(key + Pending, keyPem);
        PrivateFile.Write(ca + Pending, caPem);
        PrivateFile.Write(certificate + Pending, certificatePem); // the commit
        Recover(directory);
    }

    /// <summary>Completes or drops a replacement a crash interrupted; does nothing when there is none.</summary>
    public static void Recover(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }

        var (certificate, key, ca) = Paths(directory);
        if (File.Exists(certificate + Pending))
        {
            foreach (var path in new[] { key, ca, certificate })
            {
                if (File.Exists(path + Pending))
                {
                    File.Move(path + Pending, path, overwrite: true);
                }
            }
        }
        else
        {
            File.Delete(key + Pending);
            File.Delete(ca + Pending);
        }
    }
}
