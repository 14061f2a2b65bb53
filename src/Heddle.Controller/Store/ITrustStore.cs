namespace Heddle.Controller.Store;

/// <summary>
/// A token as kept: its SHA-256 only, never the token itself. Kind is <see cref="TokenKinds"/>; an API token without a
/// tenant is an admin's. A join token with a <see cref="Machine"/> was issued to that registered machine's boot and
/// enrols that node name only.
/// </summary>
public sealed record TokenRecord(string Id, string Hash, string Kind, string? Tenant, DateTimeOffset Created, DateTimeOffset? Expires, int? UsesLeft, bool Revoked, string? Description, string? Machine = null);

public static class TokenKinds
{
    /// <summary>A user's token for the REST API (admin, or one tenant).</summary>
    public const string Api = "api";

    /// <summary>Enrols an agent once: exchanged for a node certificate.</summary>
    public const string Join = "join";

    /// <summary>Reads <c>/metrics</c> and nothing else: what a Prometheus server is given instead of an admin token.</summary>
    public const string Metrics = "metrics";

    /// <summary>Asks for boot decisions (<c>/v1/boot</c>) and nothing else: what `heddle boot` on a provisioning host is given instead of an admin token.</summary>
    public const string Boot = "boot";
}

/// <summary>A node certificate the controller signed. Refused from the moment it is revoked (the node was removed).</summary>
public sealed record CertificateRecord(string Serial, string Node, DateTimeOffset NotAfter, bool Revoked)
{
    /// <summary>SHA-256 of the certified public key (hex; null in records written before it was kept): an agent retrying an enrolment whose answer it lost asks with the same key.</summary>
    public string? KeySha256 { get; init; }
}

/// <summary>Tokens and node certificates: what proves who is calling. Reads from this controller's copy; writes commit before their task completes.</summary>
public interface ITrustStore
{
    /// <summary>Stores a new token; false when one with that hash exists.</summary>
    Task<bool> PutTokenAsync(TokenRecord token, CancellationToken cancellationToken = default);

    TokenRecord? GetTokenByHash(string hash);

    IReadOnlyList<TokenRecord> ListTokens();

    /// <summary>Takes one use of a token limited in uses; false (nothing changed) when none is left.</summary>
    Task<bool> UseTokenAsync(string hash, CancellationToken cancellationToken = default);

    /// <summary>Revokes the tokens whose id starts with <paramref name="idPrefix"/> when exactly one does; the one revoked, or null.</summary>
    Task<TokenRecord?> RevokeTokenAsync(string idPrefix, CancellationToken cancellationToken = default);

    /// <summary>Records a certificate signed for a node.</summary>
    Task PutCertificateAsync(CertificateRecord certificate, CancellationToken cancellationToken = default);

    IReadOnlyList<CertificateRecord> ListCertificates();

    /// <summary>The certificates signed for one node (in force or not), without a pass over every node's.</summary>
    IReadOnlyList<CertificateRecord> ListCertificatesOf(string node);

    CertificateRecord? GetCertificate(string serial);

    /// <summary>Revokes every certificate of a node; how many were in force.</summary>
    Task<int> RevokeCertificatesAsync(string node, CancellationToken cancellationToken = default);

    /// <summary>Forgets a node (its record; its instances are placed elsewhere by the reconcilers).</summary>
    Task<bool> RemoveNodeAsync(string node, CancellationToken cancellationToken = default, NewEvent? told = null);
}
