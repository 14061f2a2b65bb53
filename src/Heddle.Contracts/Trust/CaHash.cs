namespace Heddle.Contracts.Trust;

/// <summary>
/// The cluster CA's hash as an operator copies it (`heddle controller` prints it, `heddle info` shows it, `heddle login
/// --ca-hash` takes it): <c>sha256:</c> and the SHA-256 of the CA certificate's SubjectPublicKeyInfo in hex, as kubeadm's
/// discovery hash. It is the same key hash a join string carries, and it stays true across a re-signed CA certificate
/// with the same key.
/// </summary>
public static class CaHash
{
    public const string Prefix = "sha256:";

    public static string Format(string publicKeyHash) => Prefix + publicKeyHash;

    public static string Of(System.Security.Cryptography.X509Certificates.X509Certificate2 ca) => Format(ClusterTrust.PublicKeyHash(ca));

    /// <summary>The 64 lower-case hex digits of a hash given as sha256:HEX (or HEX alone), or null when it is not one.</summary>
    public static string? Parse(string text)
    {
        var hex = text.Trim();
        if (hex.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            hex = hex[Prefix.Length..];
        }

        return hex.Length == 64 && hex.All(char.IsAsciiHexDigit) ? hex.ToLowerInvariant() : null;
    }
}
