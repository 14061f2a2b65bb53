using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Heddle.Contracts.Trust;

/// <summary>
/// The rules every Heddle process checks certificates by. One cluster CA signs two kinds of certificate, told apart by
/// their organisational unit: the controller's (server and client) and each node's (CN = node name). A peer is
/// trusted when its certificate chains to the cluster CA alone (never the system's roots) for the purpose at hand and
/// is of the expected kind.
/// </summary>
public static class ClusterTrust
{
    public const string ControllerUnit = "heddle-controller";
    public const string NodeUnit = "heddle-node";

    public static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");
    public static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    /// <summary>The SHA-256 of a certificate's public key (SubjectPublicKeyInfo), lower-case hex: what a join string pins.</summary>
    public static string PublicKeyHash(X509Certificate2 certificate) => PublicKeyHash(certificate.PublicKey);

    /// <summary>SHA-256 (hex) of a public key's SubjectPublicKeyInfo.</summary>
    public static string PublicKeyHash(PublicKey key) => Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));

    /// <summary>Whether <paramref name="certificate"/> was signed by <paramref name="ca"/>, is in its validity period and allows <paramref name="purpose"/>.</summary>
    public static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 ca, Oid purpose)
    {
        using var chain = new X509Chain { ChainPolicy = ChainPolicy(ca, purpose) };
        return chain.Build(certificate) && chain.ChainElements.Count == 2 && chain.ChainElements[^1].Certificate.RawDataMemory.Span.SequenceEqual(ca.RawDataMemory.Span);
    }

    /// <summary>
    /// Chains to the cluster CA alone, for <paramref name="purpose"/>, without revocation checks: the policy of
    /// <see cref="ChainsTo"/>, and the one each TLS handshake's own chain is built by. Without it, SslStream builds every
    /// peer's chain against the system's roots before asking the validation callback (whose verdict it does not change):
    /// OpenSSL sorting and searching certificates by name was about 6% of the hollow process's CPU while 5,000 nodes
    /// enrolled (perf, 2026-12-07).
    /// </summary>
    public static X509ChainPolicy ChainPolicy(X509Certificate2 ca, Oid purpose)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            VerificationTimeIgnored = false,
        };
        policy.CustomTrustStore.Add(ca);
        policy.ApplicationPolicy.Add(purpose);
        return policy;
    }

    /// <summary>The organisational unit of a certificate's subject: <see cref="ControllerUnit"/>, <see cref="NodeUnit"/> or something else.</summary>
    public static string? UnitOf(X509Certificate2 certificate) => Attribute(certificate.SubjectName, "2.5.4.11");

    /// <summary>The common name of a certificate's subject (a node's name).</summary>
    public static string? NameOf(X509Certificate2 certificate) => Attribute(certificate.SubjectName, "2.5.4.3");

    private static string? Attribute(X500DistinguishedName name, string oid)
    {
        foreach (var part in name.EnumerateRelativeDistinguishedNames())
        {
            if (part.GetSingleElementType().Value == oid)
            {
                return part.GetSingleElementValue();
            }
        }

        return null;
    }


    /// <summary>Whether a peer's certificate chains to the cluster CA for the purpose and is of the kind expected.</summary>
    public static bool Is(X509Certificate certificate, X509Certificate2 ca, Oid purpose, string unit)
    {
        var full = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return UnitOf(full) == unit && VerifiedPeers.Chains(full, ca, purpose, ChainsTo);
    }

    /// <summary>
    /// A handler that trusts only servers of this cluster of the given kind (controllers by default; host names are not
    /// compared, the CA signs for no one else) and, when given one, presents a client certificate (asked for afresh on
    /// each connection, so a renewed one is used).
    /// </summary>
    public static SocketsHttpHandler Handler(X509Certificate2 ca, Func<X509Certificate2?>? clientCertificate = null, string serverUnit = ControllerUnit)
    {
        // Pooled connections are replaced now and then, so that one made with a certificate since renewed does not outlive it.
        var handler = new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.FromMinutes(10) };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && Is(certificate, ca, ServerAuth, serverUnit);
        handler.SslOptions.CertificateChainPolicy = ChainPolicy(ca, ServerAuth);
        if (clientCertificate is not null)
        {
            handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate()!;
            // A resumed session would present the certificate of the first handshake, which may since have been renewed and expired.
            handler.SslOptions.AllowTlsResume = false;
        }

        return handler;
    }

    /// <summary>
    /// The certificate with a key TLS can use on every platform (a PKCS#12 round trip in memory); the one given is
    /// disposed. The round trip has no password, so its key derivation protects nothing: one iteration, not the default
    /// 2,000, which made this most of what enrolling cost an agent (a third of the hollow process's CPU while 10,000
    /// hollow nodes enrolled).
    /// </summary>
    public static X509Certificate2 WithUsableKey(X509Certificate2 certificate)
    {
        using (certificate)
        {
            return X509CertificateLoader.LoadPkcs12(certificate.ExportPkcs12(RoundTrip, null), null);
        }
    }

    private static readonly PbeParameters RoundTrip = new(PbeEncryptionAlgorithm.Aes128Cbc, HashAlgorithmName.SHA256, 1);

    /// <summary>Reads a PEM certificate (the first in the text).</summary>
    public static X509Certificate2 Load(string pem) => X509Certificate2.CreateFromPem(pem);
}
