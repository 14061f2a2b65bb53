using System.Text.Json;
using System.Text.Json.Serialization;

namespace Heddle.Model.Packages;

/// <summary>manifest.json inside a package: every other file with its size and SHA-256.</summary>
public sealed record PackageManifest
{
    public const string FileName = "manifest.json";
    public const int CurrentFormat = 1;

    public int Format { get; init; } = CurrentFormat;

    public required string Service { get; init; }

    public required IReadOnlyList<ManifestFile> Files { get; init; }

    public long TotalBytes => Files.Sum(f => f.Size);

    internal static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault,
    };
}

/// <param name="Path">Relative, '/'-separated.</param>
/// <param name="Sha256">Lower-case hex.</param>
public sealed record ManifestFile(string Path, long Size, string Sha256, bool Executable = false);
