using System.Text.Json;
using System.Text.Json.Serialization;
using Heddle.Contracts.Api;

namespace Heddle.Cli.Client;

/// <summary>
/// Where the CLI finds its cluster: $HEDDLE_HOME/config.json (default ~/.heddle), written by `heddle up` and `heddle
/// login` through <see cref="Save"/> and read by <see cref="Load"/>, nowhere else. The file (README, "Pointing the CLI
/// at a cluster"): <c>apiUrl</c> (the first controller), <c>apiUrls</c> (every controller, tried in turn), <c>token</c>,
/// <c>ca</c> (the cluster CA certificate, PEM, that controllers are checked against; null for an http:// API). Files
/// written before <c>apiUrls</c> existed are read as one controller. The token given with --token, else $HEDDLE_TOKEN,
/// takes the place of the file's.
/// </summary>
internal sealed record ClientConfig(
    [property: JsonPropertyName("apiUrl")] Uri ApiUrl,
    [property: JsonPropertyName("token")] string Token,
    [property: JsonPropertyName("ca")] string? CaCertificatePem)
{
    /// <summary>Every controller's API URL when there are several (`apiUrls`, the first being <see cref="ApiUrl"/>); the CLI uses the next when one cannot be reached.</summary>
    [JsonPropertyName("apiUrls")]
    public IReadOnlyList<Uri> ApiUrls { get; init; } = [ApiUrl];

    public const string TokenVariable = "HEDDLE_TOKEN";

    /// <summary>The --token option, when given (set once the command line is parsed).</summary>
    public static string? TokenOption { get; set; }

    /// <summary>The default of --request-timeout: how long the CLI waits to connect to a controller, and for its answer.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The --request-timeout option (set once the command line is parsed).</summary>
    public static TimeSpan Timeout { get; set; } = DefaultTimeout;

    public static ApiTimeouts Timeouts => ApiTimeouts.Of(Timeout);

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
            throw new CliException($"no cluster is configured: {FilePath} does not exist; start one with 'heddle up', or point the CLI at one with 'heddle login' (or set HEDDLE_HOME)");
        }

        ClientConfig? read;
        try
        {
            read = JsonSerializer.Deserialize(File.ReadAllText(FilePath), ClientConfigJson.Default.ClientConfig);
        }
        catch (Exception e) when (e is JsonException or UriFormatException or NotSupportedException)
        {
            throw Invalid(e.Message);
        }

        if (read is null || read.ApiUrl is null || string.IsNullOrEmpty(read.Token))
        {
            throw Invalid("it needs at least 'apiUrl' and 'token'");
        }

        // An older file has no apiUrls: the one controller.
        var urls = read.ApiUrls is { Count: > 0 } all ? all : [read.ApiUrl];
        return read with { Token = TokenOverride ?? read.Token, ApiUrls = urls };
    }

    private static CliException Invalid(string why) =>
        new($"{FilePath} is not a valid client configuration ({why}); run 'heddle login' (or 'heddle up') again or fix it");

    /// <summary>Writes the client configuration: mode 0600, atomically (a reader sees the old file or the new one).</summary>
    public static void Save(Uri apiUrl, string token, string? caCertificatePem, IReadOnlyList<Uri>? apiUrls = null)
    {
        Directory.CreateDirectory(Home);
        var config = new ClientConfig(apiUrl, token, caCertificatePem) { ApiUrls = apiUrls is { Count: > 0 } ? apiUrls : [apiUrl] };
        Heddle.Contracts.Trust.PrivateFile.Write(FilePath, JsonSerializer.Serialize(config, ClientConfigJson.Default.ClientConfig));
    }

    public HeddleApiClient Connect()
    {
        if (ApiUrls.Any(u => u.Scheme == Uri.UriSchemeHttps) && CaCertificatePem is null)
        {
            throw new CliException($"{FilePath} has no 'ca' (the cluster CA certificate, PEM) to check the controller at {ApiUrl} with; run 'heddle login' (or 'heddle up') again or add it");
        }

        System.Security.Cryptography.X509Certificates.X509Certificate2? ca;
        try
        {
            ca = CaCertificatePem is null ? null : Heddle.Contracts.Trust.ClusterTrust.Load(CaCertificatePem);
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            throw Invalid($"its 'ca' is not a PEM certificate: {e.Message}");
        }

        // The controller that answered last is asked first: a controller host that is gone costs one command a TCP
        // timeout, not every command.
        var last = LastAnswered();
        var order = last is null ? ApiUrls : [last, .. ApiUrls.Where(u => u != last)];
        return new(order, Token, ca, Timeouts, checkNames: true, moved: Remember);
    }

    /// <summary>$HEDDLE_HOME/controller: the API URL that answered last when it was not the first (one line).</summary>
    public static string LastAnsweredPath => Path.Combine(Home, "controller");

    private Uri? LastAnswered()
    {
        try
        {
            return File.Exists(LastAnsweredPath) && Uri.TryCreate(File.ReadAllText(LastAnsweredPath).Trim(), UriKind.Absolute, out var url) && ApiUrls.Contains(url) ? url : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static void Remember(Uri url)
    {
        try
        {
            File.WriteAllText(LastAnsweredPath + ".tmp", url + "\n");
            File.Move(LastAnsweredPath + ".tmp", LastAnsweredPath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only a shortcut for the next command.
        }
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ClientConfig))]
internal sealed partial class ClientConfigJson : JsonSerializerContext;

/// <summary>A failure to report as one sentence with a non-zero exit code.</summary>
internal sealed class CliException(string message, int exitCode = ExitCodes.Invalid, IReadOnlyList<string>? details = null) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    public IReadOnlyList<string> Details { get; } = details ?? [];
}
