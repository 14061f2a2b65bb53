using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;

namespace Heddle.Model.Packages;

/// <summary>
/// A package opened for reading. <see cref="Open"/> checks the structure of the archive (paths, links,
/// duplicates, counts, sizes, compression ratios, manifest against entries, the service definition) without
/// unpacking it; file content is checked against the manifest as it is read (<see cref="CopyFile"/>,
/// <see cref="VerifyContent"/>), so a hostile archive is caught before anything it holds is trusted.
/// </summary>
public sealed class PackageArchive : IDisposable
{
    private const int SymbolicLinkType = 0xA000;
    private const int FileTypeMask = 0xF000;

    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _entries;
    private readonly string _source;

    private PackageArchive(ZipArchive zip, Dictionary<string, ZipArchiveEntry> entries, PackageManifest manifest, ServiceDefinition definition, string serviceYaml, string source)
    {
        ServiceYaml = serviceYaml;
        _zip = zip;
        _entries = entries;
        _source = source;
        Manifest = manifest;
        Definition = definition;
    }

    public PackageManifest Manifest { get; }

    public ServiceDefinition Definition { get; }

    /// <summary>The text of service.yaml, as read (and parsed into <see cref="Definition"/>) when the package was opened.</summary>
    public string ServiceYaml { get; }

    /// <summary>Opens and checks a package. Returns null, with every problem in <paramref name="diagnostics"/>, if it is unsafe or invalid.</summary>
    /// <param name="source">The package's name for error messages (its file name).</param>
    public static PackageArchive? Open(Stream stream, string source, PackageLimits limits, DiagnosticBag diagnostics)
    {
        var at = SourceLocation.WholeFile(source);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            _ = zip.Entries.Count;
        }
        catch (InvalidDataException e)
        {
            diagnostics.Add(at, DiagnosticCodes.NotAZip, $"not a package: the file is not a zip archive or is truncated ({e.Message.TrimEnd('.')})");
            return null;
        }

        var before = diagnostics.Items.Count;
        var entries = CheckEntries(zip, source, limits, diagnostics);
        PackageManifest? manifest = null;
        ServiceDefinition? definition = null;
        var serviceYaml = string.Empty;
        if (diagnostics.Items.Count == before)
        {
            manifest = ReadManifest(entries, source, limits, diagnostics);
            definition = ReadDefinition(entries, source, limits, diagnostics, out serviceYaml);
        }

        if (manifest is not null && definition is not null)
        {
            CheckLayout(entries, manifest, definition, source, diagnostics);
        }

        if (diagnostics.Items.Count != before || manifest is null || definition is null)
        {
            zip.Dispose();
            return null;
        }

        return new PackageArchive(zip, entries, manifest, definition, serviceYaml, source);
    }

    /// <summary>Copies one file's content to <paramref name="destination"/>, checking it against the manifest as it goes.</summary>
    /// <returns>False (with a diagnostic) if the content is not what the manifest promises.</returns>
    public bool CopyFile(ManifestFile file, Stream destination, DiagnosticBag diagnostics)
    {
        var at = SourceLocation.WholeFile(_source);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[81920];
        long total = 0;
        try
        {
            using var content = _entries[file.Path].Open();
            int read;
            while ((read = content.Read(buffer)) > 0)
            {
                total += read;
                if (total > file.Size)
                {
                    diagnostics.Add(at, DiagnosticCodes.ManifestMismatch, $"'{file.Path}' holds more than the {file.Size} bytes its manifest entry says");
                    return false;
                }

                hash.AppendData(buffer, 0, read);
                destination.Write(buffer, 0, read);
            }
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            diagnostics.Add(at, DiagnosticCodes.NotAZip, $"'{file.Path}' is damaged in the archive ({e.Message.TrimEnd('.')})");
            return false;
        }

        var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (total != file.Size || actual != file.Sha256)
        {
            diagnostics.Add(at, DiagnosticCodes.ManifestMismatch,
                $"'{file.Path}' does not match the manifest (size {total}, sha256 {actual}; the manifest says size {file.Size}, sha256 {file.Sha256})");
            return false;
        }

        return true;
    }

    /// <summary>Reads every file once and checks it against the manifest.</summary>
    public bool VerifyContent(DiagnosticBag diagnostics)
    {
        var ok = true;
        foreach (var file in Manifest.Files)
        {
            ok &= CopyFile(file, Stream.Null, diagnostics);
        }

        return ok;
    }

    public void Dispose() => _zip.Dispose();

    private static Dictionary<string, ZipArchiveEntry> CheckEntries(ZipArchive zip, string source, PackageLimits limits, DiagnosticBag diagnostics)
    {
        var at = SourceLocation.WholeFile(source);
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        if (zip.Entries.Count > limits.MaxEntries)
        {
            diagnostics.Add(at, DiagnosticCodes.TooManyEntries, $"the package has {zip.Entries.Count} entries, more than the limit of {limits.MaxEntries}");
            return entries;
        }

        long total = 0;
        foreach (var entry in zip.Entries)
        {
            var path = entry.FullName;
            if (!PackageLayout.IsSafeRelativePath(path, out var reason))
            {
                diagnostics.Add(at, DiagnosticCodes.UnsafePath, $"entry '{path}' is refused: {reason}");
                continue;
            }

            if (((entry.ExternalAttributes >> 16) & FileTypeMask) == SymbolicLinkType)
            {
                diagnostics.Add(at, DiagnosticCodes.SymbolicLink, $"entry '{path}' is a symbolic link; packages may hold only regular files");
                continue;
            }

            if (path.EndsWith('/'))
            {
                continue; // a directory entry: folders are implied by the files in them
            }

            if (!entries.TryAdd(path, entry))
            {
                diagnostics.Add(at, DiagnosticCodes.DuplicateEntry, $"entry '{path}' appears more than once");
                continue;
            }

            if (entry.Length > limits.MaxEntryBytes)
            {
                diagnostics.Add(at, DiagnosticCodes.EntryTooLarge, $"entry '{path}' unpacks to {entry.Length} bytes, more than the limit of {limits.MaxEntryBytes}");
            }

            if (entry.Length > limits.RatioCheckMinBytes && entry.Length > entry.CompressedLength * limits.MaxCompressionRatio)
            {
                diagnostics.Add(at, DiagnosticCodes.CompressionRatio,
                    $"entry '{path}' expands {entry.Length / Math.Max(1, entry.CompressedLength)}:1, beyond the limit of {limits.MaxCompressionRatio}:1 (a zip bomb?)");
            }

            total += entry.Length;
        }

        if (total > limits.MaxUnpackedBytes)
        {
            diagnostics.Add(at, DiagnosticCodes.PackageTooLarge, $"the package unpacks to {total} bytes, more than the limit of {limits.MaxUnpackedBytes}");
        }

        return entries;
    }

    private static PackageManifest? ReadManifest(Dictionary<string, ZipArchiveEntry> entries, string source, PackageLimits limits, DiagnosticBag diagnostics)
    {
        var at = SourceLocation.WholeFile(source);
        if (!entries.TryGetValue(PackageManifest.FileName, out var entry))
        {
            diagnostics.Add(at, DiagnosticCodes.MissingPackageFile, $"the package has no {PackageManifest.FileName}; build packages with 'heddle pack'");
            return null;
        }

        PackageManifest? manifest;
        try
        {
            using var stream = entry.Open();
            manifest = JsonSerializer.Deserialize<PackageManifest>(ReadSmall(stream, limits), PackageManifest.JsonOptions);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or NotSupportedException)
        {
            diagnostics.Add(at, DiagnosticCodes.ManifestInvalid, $"{PackageManifest.FileName} cannot be read: {e.Message}");
            return null;
        }

        if (manifest is null || manifest.Files is null || manifest.Format != PackageManifest.CurrentFormat)
        {
            diagnostics.Add(at, DiagnosticCodes.ManifestInvalid,
                $"{PackageManifest.FileName} is not a format {PackageManifest.CurrentFormat} manifest; rebuild the package with this version of 'heddle pack'");
            return null;
        }

        var listed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in manifest.Files)
        {
            if (file.Path is null || !listed.Add(file.Path) || file.Sha256 is null || !Sha256Hex.IsValid(file.Sha256))
            {
                diagnostics.Add(at, DiagnosticCodes.ManifestInvalid, $"{PackageManifest.FileName} lists '{file.Path}' twice or without a valid sha256");
                continue;
            }

            if (!entries.TryGetValue(file.Path, out var content))
            {
                diagnostics.Add(at, DiagnosticCodes.ManifestMismatch, $"the manifest lists '{file.Path}' but the package does not hold it");
            }
            else if (content.Length != file.Size)
            {
                diagnostics.Add(at, DiagnosticCodes.ManifestMismatch, $"'{file.Path}' is {content.Length} bytes but the manifest says {file.Size}");
            }
        }

        foreach (var path in entries.Keys.Where(p => p != PackageManifest.FileName && !listed.Contains(p)))
        {
            diagnostics.Add(at, DiagnosticCodes.ManifestMismatch, $"the package holds '{path}', which the manifest does not list");
        }

        return manifest;
    }

    private static ServiceDefinition? ReadDefinition(Dictionary<string, ZipArchiveEntry> entries, string source, PackageLimits limits, DiagnosticBag diagnostics, out string text)
    {
        text = string.Empty;
        if (!entries.TryGetValue(PackageLayout.ServiceFile, out var entry))
        {
            diagnostics.Add(SourceLocation.WholeFile(source), DiagnosticCodes.MissingPackageFile, $"the package has no {PackageLayout.ServiceFile} at its root");
            return null;
        }

        try
        {
            using var stream = entry.Open();
            text = Encoding.UTF8.GetString(ReadSmall(stream, limits));
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            diagnostics.Add(SourceLocation.WholeFile(source), DiagnosticCodes.NotAZip, $"{PackageLayout.ServiceFile} is damaged in the archive ({e.Message.TrimEnd('.')})");
            return null;
        }

        return ServiceDefinitionParser.Parse(text, diagnostics, $"{source}!{PackageLayout.ServiceFile}") is { } definition && !diagnostics.HasErrors
            ? definition
            : null;
    }

    /// <summary>Every file sits at service.yaml, manifest.json or under the folder of a declared role.</summary>
    private static void CheckLayout(Dictionary<string, ZipArchiveEntry> entries, PackageManifest manifest, ServiceDefinition definition, string source, DiagnosticBag diagnostics)
    {
        var at = SourceLocation.WholeFile(source);
        if (manifest.Service != definition.Name)
        {
            diagnostics.Add(at, DiagnosticCodes.ManifestMismatch, $"the manifest is for service '{manifest.Service}' but service.yaml names '{definition.Name}'");
        }

        foreach (var path in entries.Keys)
        {
            if (path is PackageLayout.ServiceFile or PackageManifest.FileName)
            {
                continue;
            }

            var role = PackageLayout.RoleOf(path);
            if (role is null || definition.FindRole(role) is null)
            {
                diagnostics.Add(at, DiagnosticCodes.UnknownRoleFolder,
                    $"entry '{path}' is not under the folder of a role (roles/<role>/ for one of {string.Join(", ", definition.Roles.Select(r => r.Name))})");
            }
        }
    }

    /// <summary>Small metadata files are read whole, but never more than 16 MiB whatever their header claims.</summary>
    private static byte[] ReadSmall(Stream stream, PackageLimits limits)
    {
        var cap = Math.Min(limits.MaxEntryBytes, 16L << 20);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = stream.Read(chunk)) > 0)
        {
            if (buffer.Length + read > cap)
            {
                throw new InvalidDataException($"the file is larger than {cap} bytes");
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }
}
