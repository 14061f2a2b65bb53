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

    /// <summary>
    /// The name (a DNS subject alternative name) every etcd client certificate carries. etcd members are started with
    /// --client-cert-allowed-hostname of it, so they refuse every other certificate of this CA: a node's certificate,
    /// held on a host that runs tenants' code, never reaches the store.
    /// </summary>
    public const string EtcdClientName = "heddle-etcd-client";

    /// <summary>
    /// An etcd member's certificate, with a key of its own: server and client use (it serves clients and peers, and dials
    /// its peers), valid for <paramref name="addresses"/> (IP addresses or host names, as clients and peers dial it) and
    /// carrying <see cref="EtcdClientName"/> (the member's own gateway and health checks dial it as a client).
    /// </summary>
    public IssuedPem IssueEtcdMember(string name, IReadOnlyList<string> addresses, TimeSpan lifetime, TimeProvider time)
    {
        var names = new SubjectAlternativeNameBuilder();
        foreach (var address in addresses)
        {
            if (IPAddress.TryParse(address, out var ip))
            {
                names.AddIpAddress(ip);
            }
            else
            {
                names.AddDnsName(address);
            }
        }

        names.AddDnsName(EtcdClientName);
        return IssueEtcd($"CN={name}, OU={EtcdMemberUnit}", names, serverAuth: true, lifetime, time);
    }

    /// <summary>A controller's etcd client certificate, with a key of its own: client use only, named <see cref="EtcdClientName"/>.</summary>
    public IssuedPem IssueEtcdClient(string name, TimeSpan lifetime, TimeProvider time)
    {
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(EtcdClientName);
        return IssueEtcd($"CN={name}, OU={EtcdClientUnit}", names, serverAuth: false, lifetime, time);
    }

    /// <summary>The organisational unit of etcd member and client certificates.</summary>
    public const string EtcdMemberUnit = "heddle-etcd-member", EtcdClientUnit = "heddle-etcd-client";

    private IssuedPem IssueEtcd(string subject, SubjectAlternativeNameBuilder names, bool serverAuth, TimeSpan lifetime, TimeProvider time)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(names.Build());
        AddLeafExtensions(request, serverAuth);
        var now = time.GetUtcNow();
        using var signed = request.Create(Certificate, now.AddMinutes(-5), now + lifetime, NewSerial());
        return new IssuedPem(signed.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
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

/// <summary>A certificate and its private key, PEM, as they are written to files.</summary>
public sealed record IssuedPem(string Certificate, string PrivateKey);
