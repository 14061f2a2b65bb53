using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Heddle.Contracts.Trust;
using Heddle.Controller.Store;

namespace Heddle.Controller.Trust;

/// <summary>
/// Node certificates: signed once for a join token (enrolment), renewed over mutual TLS, revoked when the node is
/// removed. A certificate in force is known by its serial; anything else is refused. A renewed certificate stays valid
/// until it expires (connections made with it keep working while the agent moves to the new one), as kubelets' do.
/// Every check reads the store, so a certificate signed or revoked by another controller sharing it counts here too.
/// </summary>
public sealed class NodeCertificates
{
    private readonly ITrustStore _store;
    private readonly CertificateAuthority _ca;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lifetime;
    /// <summary>
    /// Enrolments and renewals of one node name take turns (the check for a certificate in force and the write of a new
    /// one go together); other names' do not wait for them. One lock for every name made enrolment as slow as one store
    /// commit after another: about ten nodes a second while 10,000 enrolled at once, and agents' requests timed out.
    /// Names share one of these by their hash.
    /// </summary>
    private readonly SemaphoreSlim[] _enrolling = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    private SemaphoreSlim TurnOf(string node) => _enrolling[(int)((uint)StringComparer.Ordinal.GetHashCode(node) % (uint)_enrolling.Length)];

    public NodeCertificates(ITrustStore store, CertificateAuthority ca, TimeProvider time, ControllerOptions options)
    {
        _store = store;
        _ca = ca;
        _time = time;
        _lifetime = options.NodeCertificateLifetime;
    }

    /// <summary>
    /// Signs a first certificate for <paramref name="node"/>; refused (with the reason) when a certificate of that name is
    /// in force, unless <paramref name="replaceInForce"/>: a disk-less machine booting again with its own machine's join
    /// string, whose earlier certificate went with its memory; that one is then revoked (and <c>Replaced</c> says so).
    /// </summary>
    public async Task<(X509Certificate2? Certificate, string? Refusal)> EnrolAsync(string node, string signingRequestPem, CancellationToken cancellationToken = default,
        bool replaceInForce = false)
    {
        if (NameError(node) is { } error)
        {
            return (null, error);
        }

        var turn = TurnOf(node);
        await turn.WaitAsync(cancellationToken);
        try
        {
            var inForce = _store.ListCertificatesOf(node).Where(c => !c.Revoked && c.NotAfter > _time.GetUtcNow()).ToList();
            if (inForce.Count > 0)
            {
                if (replaceInForce)
                {
                    // Signed first, revoked after: a request that is not a valid one leaves the node's certificate in force.
                    return await IssueAsync(node, signingRequestPem, cancellationToken, revokeOthers: true);
                }

                // The agent that holds the key of a certificate in force, asking again (its request timed out while the
                // controller answered it), is the node itself: it gets a certificate again, and the other stays in force.
                // Refused, it could never enrol: its name was taken by its own first request.
                if (KeyOf(signingRequestPem) is { } key && inForce.Any(c => c.KeySha256 == key))
                {
                    return await IssueAsync(node, signingRequestPem, cancellationToken);
                }

                return (null, $"node {node} is already enrolled and its certificate is in force; a second agent cannot take its name "
                    + $"(if the node was rebuilt and lost its certificate, run 'heddle nodes remove {node}' first)");
            }

            return await IssueAsync(node, signingRequestPem, cancellationToken);
        }
        finally
        {
            turn.Release();
        }
    }

    /// <summary>A new certificate for a node that proved itself with one in force.</summary>
    public async Task<(X509Certificate2? Certificate, string? Refusal)> RenewAsync(string node, string signingRequestPem, CancellationToken cancellationToken = default)
    {
        var turn = TurnOf(node);
        await turn.WaitAsync(cancellationToken);
        try
        {
            return await IssueAsync(node, signingRequestPem, cancellationToken);
        }
        finally
        {
            turn.Release();
        }
    }

    /// <summary>SHA-256 (hex) of the public key a signing request asks to have certified; null when it is not a valid request.</summary>
    private static string? KeyOf(string signingRequestPem)
    {
        try
        {
            var asked = CertificateRequest.LoadSigningRequestPem(signingRequestPem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default);
            return ClusterTrust.PublicKeyHash(asked.PublicKey);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            return null;
        }
    }

    private async Task<(X509Certificate2? Certificate, string? Refusal)> IssueAsync(string node, string signingRequestPem, CancellationToken cancellationToken, bool revokeOthers = false)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = _ca.IssueNode(node, signingRequestPem, _lifetime, _time);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            return (null, $"the certificate signing request is not valid: {e.Message}");
        }

        if (revokeOthers)
        {
            await _store.RevokeCertificatesAsync(node, cancellationToken);
        }

        var record = new CertificateRecord(certificate.SerialNumber, node, certificate.NotAfter.ToUniversalTime(), false)
        {
            KeySha256 = ClusterTrust.PublicKeyHash(certificate),
        };
        await _store.PutCertificateAsync(record, cancellationToken);
        return (certificate, null);
    }

    /// <summary>
    /// The node a client certificate proves, or null: it must chain to the cluster CA (checked in the handshake too),
    /// be a node certificate, and be the one in force for its node.
    /// </summary>
    public string? NodeOf(X509Certificate2? certificate)
    {
        if (certificate is null || !ClusterTrust.Is(certificate, _ca.Certificate, ClusterTrust.ClientAuth, ClusterTrust.NodeUnit))
        {
            return null;
        }

        return _store.GetCertificate(certificate.SerialNumber) is { Revoked: false } record && record.Node == ClusterTrust.NameOf(certificate) ? record.Node : null;
    }

    /// <summary>Revokes every certificate of a node; true when one was in force.</summary>
    public async Task<bool> RevokeAsync(string node, CancellationToken cancellationToken = default) => await _store.RevokeCertificatesAsync(node, cancellationToken) > 0;

    /// <summary>Node names follow the rule of DNS labels, so they can stand in a certificate's name.</summary>
    public static string? NameError(string node) =>
        node.Length is > 0 and <= 63 && node.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-') && node[0] != '-' && node[^1] != '-'
            ? null
            : $"'{Printable.Of(node)}' is not a node name: use 1 to 63 lower-case letters, digits and '-', not starting or ending with '-'";
}
