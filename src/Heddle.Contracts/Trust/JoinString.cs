namespace Heddle.Contracts.Trust;

/// <summary>
/// What `heddle token create --join` prints and `heddle agent --join` takes: the join token and the SHA-256 of the
/// cluster CA's public key, as kubeadm's token and discovery hash, in one string: hjoin.TOKEN.CAHASH.
/// </summary>
public static class JoinString
{
    private const string Prefix = "hjoin.";

    public static string Format(string token, string caPublicKeyHash) => $"{Prefix}{token}.{caPublicKeyHash}";

    public static (string Token, string CaPublicKeyHash) Parse(string text)
    {
        var parts = text.Trim().Split('.');
        if (!text.Trim().StartsWith(Prefix, StringComparison.Ordinal) || parts.Length != 3 || parts[1].Length < 32 || parts[2].Length != 64
            || !parts[1].All(char.IsAsciiHexDigitLower) || !parts[2].All(char.IsAsciiHexDigitLower))
        {
            throw new FormatException("a join string looks like hjoin.<token>.<64 hex digits of the CA's key hash>, as 'heddle token create --join' prints it");
        }

        return (parts[1], parts[2]);
    }
}
