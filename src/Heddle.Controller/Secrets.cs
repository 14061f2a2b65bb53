using System.Security.Cryptography;
using System.Text;
using Heddle.Controller.Store;

namespace Heddle.Controller;

/// <summary>
/// The API token (users) and the join token (agents): created at cluster init, kept in the store, and written to
/// the state directory with mode 0600 so that only the owner can read them.
/// </summary>
public sealed class Secrets
{
    public Secrets(IClusterStore store, string stateDirectory)
    {
        ApiToken = store.GetOrCreateSecret("api-token", NewToken);
        JoinToken = store.GetOrCreateSecret("join-token", NewToken);
        WritePrivate(Path.Combine(stateDirectory, "api-token"), ApiToken);
        WritePrivate(Path.Combine(stateDirectory, "join-token"), JoinToken);
    }

    public string ApiToken { get; }

    public string JoinToken { get; }

    public bool IsApiToken(string? header) => Matches(header, ApiToken);

    public bool IsJoinToken(string? header) => Matches(header, JoinToken);

    private static bool Matches(string? header, string token)
    {
        const string Bearer = "Bearer ";
        if (header is null || !header.StartsWith(Bearer, StringComparison.Ordinal))
        {
            return false;
        }

        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[Bearer.Length..].Trim()), Encoding.UTF8.GetBytes(token));
    }

    private static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    private static void WritePrivate(string path, string content)
    {
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            file.Write(Encoding.UTF8.GetBytes(content + "\n"));
        }

        File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temporary, path, overwrite: true);
    }
}
