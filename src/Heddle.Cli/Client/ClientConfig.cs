using System.Text.Json;
using Heddle.Contracts.Api;

namespace Heddle.Cli.Client;

/// <summary>
/// Where the CLI finds its cluster: $HEDDLE_HOME/config.json (default ~/.heddle), written by `heddle up`: the API's
/// URL, a token, and the cluster CA certificate the controller is checked against. The token given with --token, else
/// $HEDDLE_TOKEN, takes the place of the file's.
/// </summary>
internal sealed record ClientConfig(Uri ApiUrl, string Token, string? CaCertificatePem)
{
    /// <summary>Every controller's API URL when there are several (`apiUrls`, the first being <see cref="ApiUrl"/>); the CLI uses the next when one cannot be reached.</summary>
    public IReadOnlyList<Uri> ApiUrls { get; init; } = [ApiUrl];

    public const string TokenVariable = "HEDDLE_TOKEN";

    /// <summary>The --token option, when given (set once the command line is parsed).</summary>
    public static string? TokenOption { get; set; }

    /// <summary>The token given with --token, else in $HEDDLE_TOKEN, else null.</summary>
    public static string? TokenOverride => TokenOption is { Length: > 0 } option ? option
        : Environment.GetEnvironmentVariable(TokenVariable) is { Length: > 0 } variable ? variable.Trim() : null;

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
            var root = json.RootElement;
            var ca = root.TryGetProperty("ca", out var pem) && pem.ValueKind == JsonValueKind.String ? pem.GetString() : null;
            var apiUrl = new Uri(root.GetProperty("apiUrl").GetString()!);
            var all = root.TryGetProperty("apiUrls", out var urls) && urls.ValueKind == JsonValueKind.Array ? urls.EnumerateArray().Select(u => new Uri(u.GetString()!)).ToList() : [apiUrl];
            return new ClientConfig(apiUrl, TokenOverride ?? root.GetProperty("token").GetString()!, ca) { ApiUrls = all.Count > 0 ? all : [apiUrl] };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or UriFormatException or InvalidOperationException)
        {
            throw new CliException($"{FilePath} is not a valid client configuration ({e.Message}); run 'heddle up' again or fix it");
        }
    }

    public static void Save(Uri apiUrl, string token, string? caCertificatePem, IReadOnlyList<Uri>? apiUrls = null)
    {
        Directory.CreateDirectory(Home);
        Heddle.Contracts.Trust.PrivateFile.Write(FilePath, JsonSerializer.Serialize(new { apiUrl, apiUrls = apiUrls ?? [apiUrl], token, ca = caCertificatePem }, CliConsole.Json));
    }

    public HeddleApiClient Connect()
    {
        if (ApiUrl.Scheme == Uri.UriSchemeHttps && CaCertificatePem is null)
        {
            throw new CliException($"{FilePath} has no 'ca' (the cluster CA certificate, PEM) to check the controller at {ApiUrl} with; run 'heddle up' again or add it");
        }

        return new(ApiUrls, Token, CaCertificatePem is null ? null : Heddle.Contracts.Trust.ClusterTrust.Load(CaCertificatePem));
    }
}

/// <summary>A failure to report as one sentence with a non-zero exit code.</summary>
internal sealed class CliException(string message, int exitCode = ExitCodes.Invalid, IReadOnlyList<string>? details = null) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    public IReadOnlyList<string> Details { get; } = details ?? [];
}
