using Heddle.Contracts.Trust;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Trust;

/// <summary>
/// Writes etcd certificates issued by the cluster CA into a folder: NAME.crt, NAME.key (mode 0600) and ca.crt (the CA's
/// certificate, which both ends check the other with). What `heddle ca issue-etcd-member` / `issue-etcd-client` and
/// `heddle up --controllers N` make.
/// </summary>
public static class EtcdCertificates
{
    /// <summary>How long etcd certificates are valid unless told otherwise.</summary>
    public static TimeSpan DefaultLifetime { get; } = TimeSpan.FromDays(365);

    /// <summary>A member's certificate for <paramref name="addresses"/> (what clients and peers dial it by).</summary>
    public static EtcdTlsFiles WriteMember(CertificateAuthority ca, string name, IReadOnlyList<string> addresses, string directory, TimeSpan lifetime, TimeProvider time)
    {
        if (addresses.Count == 0)
        {
            throw new ArgumentException("give the member at least one address its clients and peers dial");
        }

        return Write(ca, name, directory, ca.IssueEtcdMember(name, addresses, lifetime, time));
    }

    /// <summary>A controller's client certificate.</summary>
    public static EtcdTlsFiles WriteClient(CertificateAuthority ca, string name, string directory, TimeSpan lifetime, TimeProvider time) =>
        Write(ca, name, directory, ca.IssueEtcdClient(name, lifetime, time));

    /// <summary>Whether <paramref name="name"/> can name a certificate and its files: letters, digits, '.', '-' and '_'.</summary>
    public static bool IsName(string name) =>
        name.Length is > 0 and <= 64 && name[0] != '.' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static EtcdTlsFiles Write(CertificateAuthority ca, string name, string directory, IssuedPem issued)
    {
        if (!IsName(name))
        {
            throw new ArgumentException($"'{name}' cannot name a certificate: use letters, digits, '.', '-' and '_'");
        }

        Directory.CreateDirectory(directory);
        var caFile = Path.Combine(directory, "ca.crt");
        if (File.Exists(caFile) && File.ReadAllText(caFile).Trim() != ca.CertificatePem.Trim())
        {
            throw new InvalidOperationException($"{caFile} is the certificate of another CA: give another folder");
        }

        var files = new EtcdTlsFiles(caFile, Path.Combine(directory, name + ".crt"), Path.Combine(directory, name + ".key"));
        PrivateFile.Write(files.KeyFile, issued.PrivateKey);
        File.WriteAllText(files.CertificateFile, issued.Certificate);
        if (!File.Exists(caFile))
        {
            File.WriteAllText(caFile, ca.CertificatePem);
        }

        return files;
    }
}
