using System.Net;
using System.Net.NetworkInformation;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Heddle.Contracts.Trust;

namespace Heddle.Controller.Trust;

/// <summary>
/// The cluster's certificate authority: an ECDSA P-256 key and a self-signed certificate made at cluster init and kept in
/// the state folder (ca.key mode 0600, ca.crt). It signs the controller's certificate (made afresh at each start, for
/// the addresses it listens on) and node certificates from agents' signing requests.
/// </summary>
public sealed class CertificateAuthority : IDisposable
{
    private CertificateAuthority(X509Certificate2 certificate) => Certificate = certificate;

    /// <summary>The CA certificate with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The CA certificate alone, PEM: what clients are given to check the controller with.</summary>
    public string CertificatePem => Certificate.ExportCertificatePem();

    /// <summary>The SHA-256 of the CA's public key, which a join string carries.</summary>
    public string PublicKeyHash => ClusterTrust.PublicKeyHash(Certificate);

    public static CertificateAuthority LoadOrCreate(string stateDirectory, TimeProvider time)
    {
        var certificatePath = Path.Combine(stateDirectory, "ca.crt");
        var keyPath = Path.Combine(stateDirectory, "ca.key");
        if (File.Exists(certificatePath) && File.Exists(keyPath))
        {
            return new CertificateAuthority(X509Certificate2.CreateFromPemFile(certificatePath, keyPath));
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=heddle cluster CA {Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}, OU=heddle-ca", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = time.GetUtcNow();
        using var created = request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(10));
        PrivateFile.Write(keyPath, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(certificatePath, created.ExportCertificatePem());
        return new CertificateAuthority(X509Certificate2.CreateFromPemFile(certificatePath, keyPath));
    }

    /// <summary>
    /// The controller's certificate (server and client), valid for <paramref name="listen"/> (for a wildcard address,
    /// every address of this host), loopback, localhost, the host's name and each of <paramref name="tlsNames"/> (IP
    /// addresses or DNS names). It is made afresh at each start, so it always names what the controller is started with.
    /// </summary>
    public X509Certificate2 IssueController(IPAddress listen, TimeProvider time, IEnumerable<string>? tlsNames = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=heddle controller, OU={ClusterTrust.ControllerUnit}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        var dnsNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "localhost", Environment.MachineName };
        var addresses = Addresses(listen);
        foreach (var name in tlsNames ?? [])
        {
            if (IPAddress.TryParse(name, out var address))
            {
                addresses.Add(address);
            }
            else
            {
                dnsNames.Add(name.TrimEnd('.'));
            }
        }

        foreach (var name in dnsNames)
        {
            names.AddDnsName(name);
        }

        foreach (var address in addresses)
        {
            names.AddIpAddress(address);
        }

        request.CertificateExtensions.Add(names.Build());
        AddLeafExtensions(request, serverAuth: true);
        var now = time.GetUtcNow();
        using var signed = request.Create(Certificate, now.AddMinutes(-5), now.AddYears(1), NewSerial());
        return ClusterTrust.WithUsableKey(signed.CopyWithPrivateKey(key));
    }

    /// <summary>Signs a node's certificate from its PEM signing request (whose own signature is checked): CN = the node, client and server use, <paramref name="lifetime"/>.</summary>
    public X509Certificate2 IssueNode(string node, string signingRequestPem, TimeSpan lifetime, TimeProvider time)
    {
        var asked = CertificateRequest.LoadSigningRequestPem(signingRequestPem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default);
        // Only the key comes from the request: the name and uses are the controller's to say.
        var request = new CertificateRequest(new X500DistinguishedName($"CN={node}, OU={ClusterTrust.NodeUnit}"), asked.PublicKey, HashAlgorithmName.SHA256);
        AddLeafExtensions(request, serverAuth: true);
        // Backdated a little for clocks that lag, never so much that a short life is mostly spent at birth.
        var now = time.GetUtcNow();
        var backdate = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(1).Ticks, lifetime.Ticks / 10));
        return request.Create(Certificate, now - backdate, now + lifetime, NewSerial());
    }

    private void AddLeafExtensions(CertificateRequest request, bool serverAuth)
    {
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        var uses = new OidCollection { ClusterTrust.ClientAuth };
        if (serverAuth)
        {
            uses.Add(ClusterTrust.ServerAuth);
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(uses, false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
    }

    private static byte[] NewSerial()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f; // positive
        return serial;
    }

    /// <summary>Why <paramref name="name"/> cannot be a --tls-name, or null: an IP address or a DNS name (labels of letters, digits and hyphens).</summary>
    public static string? TlsNameError(string name)
    {
        if (IPAddress.TryParse(name, out _))
        {
            return null;
        }

        var labels = name.TrimEnd('.').Split('.');
        return name.Length is > 0 and <= 253 && labels.All(l => l.Length is > 0 and <= 63 && l[0] != '-' && l[^1] != '-' && l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            ? null
            : $"'{Printable.Of(name)}' is neither an IP address nor a DNS name";
    }

    private static HashSet<IPAddress> Addresses(IPAddress listen)
    {
        var set = new HashSet<IPAddress> { IPAddress.Loopback, IPAddress.IPv6Loopback };
        if (listen.Equals(IPAddress.Any) || listen.Equals(IPAddress.IPv6Any))
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                {
                    set.Add(unicast.Address);
                }
            }
        }
        else
        {
            set.Add(listen);
        }

        return set;
    }

    public void Dispose() => Certificate.Dispose();
}
