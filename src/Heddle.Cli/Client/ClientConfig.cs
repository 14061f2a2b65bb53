using System.Text.Json;
using Heddle.Contracts.Api;

namespace Heddle.Cli.Client;

/// <summary>Where the CLI finds its cluster: $HEDDLE_HOME/config.json (default ~/.heddle), written by `heddle up`.</summary>
internal sealed record ClientConfig(Uri ApiUrl, string Token)
{
    public static string Home => Environment.GetEnvironmentVariable("HEDDLE_HOME") is { Length: > 0 } home
        ? home
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".heddle");

    public static string FilePath => Path.Combine(Home, "config.json");

    public static ClientConfig Load()
    {
        if (!File.Exists(FilePath))
        {
            throw new CliException($"no cluster is configured: {FilePath} does not exist; start one with 'heddle up' (or set HEDDLE_HOME)");
        }

        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(FilePath));
            return new ClientConfig(new Uri(json.RootElement.GetProperty("apiUrl").GetString()!), json.RootElement.GetProperty("token").GetString()!);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or UriFormatException or InvalidOperationException)
        {
            throw new CliException($"{FilePath} is not a valid client configuration ({e.Message}); run 'heddle up' again or fix it");
        }
    }

    public static void Save(Uri apiUrl, string token)
    {
        Directory.CreateDirectory(Home);
        var temporary = FilePath + ".tmp";
        using (var file = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            JsonSerializer.Serialize(file, new { apiUrl, token }, CliConsole.Json);
        }

        File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temporary, FilePath, overwrite: true);
    }

    public HeddleApiClient Connect() => new(ApiUrl, Token);
}

/// <summary>A failure to report as one sentence with a non-zero exit code.</summary>
internal sealed class CliException(string message, int exitCode = ExitCodes.Invalid, IReadOnlyList<string>? details = null) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    public IReadOnlyList<string> Details { get; } = details ?? [];
}
