using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Contracts.Files;

namespace Heddle.Cli.Client;

/// <summary>
/// Where the CLI finds its cluster: $HEDDLE_HOME/config.json (default ~/.heddle), written by `heddle up` and `heddle
/// login` through <see cref="Save"/> and read by <see cref="Load"/>; the file is the shared record <see cref="ClientFile"/>
/// (README, "Pointing the CLI at a cluster"). Files written before <c>apiUrls</c> existed are read as one controller. The
/// token given with --token, else $HEDDLE_TOKEN, takes the place of the file's.
/// </summary>
internal sealed record ClientConfig(Uri ApiUrl, string Token, string? CaCertificatePem)
{
    /// <summary>Every controller's API URL (the first being <see cref="ApiUrl"/>); the CLI uses the next when one cannot be reached.</summary>
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

        ClientFile? read;
        try
        {
            read = ClientFile.Read(FilePath);
        }
        catch (Exception e) when (e is JsonException or UriFormatException or NotSupportedException)
        {
            throw Invalid(e.Message);
        }

        if (read is null || read.ApiUrl is null || string.IsNullOrEmpty(read.Token))
        {
            throw Invalid("it needs at least 'apiUrl' and 'token'");
        }

        return new ClientConfig(read.ApiUrl, TokenOverride ?? read.Token, read.Ca) { ApiUrls = read.Controllers };
    }

    private static CliException Invalid(string why) =>
        new($"{FilePath} is not a valid client configuration ({why}); run 'heddle login' (or 'heddle up') again or fix it");

    /// <summary>Writes the client configuration: mode 0600, atomically (a reader sees the old file or the new one).</summary>
    public static void Save(Uri apiUrl, string token, string? caCertificatePem, IReadOnlyList<Uri>? apiUrls = null)
    {
        Directory.CreateDirectory(Home);
        new ClientFile(apiUrl, token, caCertificatePem) { ApiUrls = apiUrls is { Count: > 0 } ? apiUrls : [apiUrl] }.Write(FilePath);
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

/// <summary>A failure to report as one sentence with a non-zero exit code.</summary>
internal sealed class CliException(string message, int exitCode = ExitCodes.Invalid, IReadOnlyList<string>? details = null) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    public IReadOnlyList<string> Details { get; } = details ?? [];
}
