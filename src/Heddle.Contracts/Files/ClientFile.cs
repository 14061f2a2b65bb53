using System.Text.Json;
using System.Text.Json.Serialization;
using Heddle.Contracts.Trust;

namespace Heddle.Contracts.Files;

/// <summary>
/// The client configuration, $HEDDLE_HOME/config.json: written by `heddle up` and `heddle login`, read by the CLI, the
/// benchmarks and the tests. <see cref="ApiUrl"/> is the first controller, <see cref="ApiUrls"/> every controller (tried
/// in turn), <see cref="Ca"/> the cluster CA certificate (PEM) controllers are checked against, null for an http:// API.
/// </summary>
public sealed record ClientFile(
    [property: JsonPropertyName("apiUrl")] Uri ApiUrl,
    [property: JsonPropertyName("token")] string Token,
    [property: JsonPropertyName("ca")] string? Ca)
{
    /// <summary>Every controller's API URL, the first being <see cref="ApiUrl"/>; null in a file written before there could be several.</summary>
    [JsonPropertyName("apiUrls")]
    public IReadOnlyList<Uri>? ApiUrls { get; init; }

    /// <summary>Every controller to try, in order: <see cref="ApiUrls"/>, or the one <see cref="ApiUrl"/> of an older file.</summary>
    [JsonIgnore]
    public IReadOnlyList<Uri> Controllers => ApiUrls is { Count: > 0 } all ? all : [ApiUrl];

    /// <summary>The file's content (null for a JSON null); throws <see cref="JsonException"/>, <see cref="UriFormatException"/> or <see cref="NotSupportedException"/> on a file that is not one.</summary>
    public static ClientFile? Parse(string json) => JsonSerializer.Deserialize(json, ClientFileJson.Default.ClientFile);

    /// <summary>The configuration in the file at <paramref name="path"/> (as <see cref="Parse"/>).</summary>
    public static ClientFile? Read(string path) => Parse(File.ReadAllText(path));

    /// <summary>Writes the file: mode 0600 (it holds a token), atomically (a reader sees the old file or the new one).</summary>
    public void Write(string path) => PrivateFile.Write(path, JsonSerializer.Serialize(this, ClientFileJson.Default.ClientFile));
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ClientFile))]
internal sealed partial class ClientFileJson : JsonSerializerContext;
