using System.Security.Cryptography.X509Certificates;
using Heddle.Contracts.Trust;

namespace Heddle.Controller.Store.Kv;

/// <summary>
/// The three PEM files of one end of a TLS connection to etcd: the CA the other end's certificate must chain to, and this
/// end's certificate with its key (mode 0600). A controller's are `--etcd-ca`, `--etcd-cert` and `--etcd-key`; an etcd
/// member's are its --trusted-ca-file, --cert-file and --key-file (the same for its peers).
/// </summary>
public sealed record EtcdTlsFiles(string CaFile, string CertificateFile, string KeyFile)
{
    /// <summary>A sentence saying which file is missing, or null.</summary>
    public string? Problem()
    {
        foreach (var (file, option) in new[] { (CaFile, "--etcd-ca"), (CertificateFile, "--etcd-cert"), (KeyFile, "--etcd-key") })
        {
            if (!File.Exists(file))
            {
                return $"{option} {file}: no such file";
            }
        }

        return null;
    }

    /// <summary>A connection to <paramref name="members"/> over TLS with these files (read now).</summary>
    public EtcdConnection Connect(IReadOnlyList<Uri> members)
    {
        var trusted = new X509Certificate2Collection();
        try
        {
            trusted.ImportFromPemFile(CaFile);
            if (trusted.Count == 0)
            {
                throw new InvalidOperationException($"--etcd-ca {CaFile} holds no certificate");
            }

            return new EtcdConnection(members, trusted, ClusterTrust.WithUsableKey(X509Certificate2.CreateFromPemFile(CertificateFile, KeyFile)));
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            throw new InvalidOperationException($"the etcd TLS files could not be read (--etcd-ca {CaFile}, --etcd-cert {CertificateFile}, --etcd-key {KeyFile}): {e.Message}", e);
        }
    }
}
