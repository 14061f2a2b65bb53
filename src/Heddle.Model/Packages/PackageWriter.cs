using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;

namespace Heddle.Model.Packages;

/// <summary>One file to put in a package. <see cref="Open"/> is called once, when the file is written.</summary>
public sealed record PackageSourceFile(string Path, bool Executable, Func<Stream> Open);

/// <summary>
/// Writes a package reproducibly: entries sorted by path, one fixed timestamp, modes reduced to 0644/0755,
/// so the same files give the same bytes and therefore the same package hash.
/// </summary>
public static class PackageWriter
{
    /// <summary>The timestamp every entry carries (the DOS epoch cannot be used: some readers treat it as "unset").</summary>
    public static readonly DateTimeOffset FixedTimestamp = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private const int RegularFile = 0x8000;
    private const int ExecutableMode = RegularFile | 0x1ED; // 0755
    private const int PlainMode = RegularFile | 0x1A4;      // 0644

    public static PackageManifest Write(string service, IEnumerable<PackageSourceFile> files, Stream output)
    {
        var sorted = files.OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
        for (var i = 0; i < sorted.Count; i++)
        {
            if (!PackageLayout.IsSafeRelativePath(sorted[i].Path, out var reason) || sorted[i].Path.EndsWith('/'))
            {
                throw new ArgumentException($"'{sorted[i].Path}' cannot be packed: {reason}", nameof(files));
            }

            if (i > 0 && sorted[i].Path == sorted[i - 1].Path || sorted[i].Path == PackageManifest.FileName)
            {
                throw new ArgumentException($"'{sorted[i].Path}' is given twice or is reserved", nameof(files));
            }
        }

        var listed = new List<ManifestFile>(sorted.Count);
        using (var archive = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            var buffer = new byte[81920];
            foreach (var file in sorted)
            {
                var entry = NewEntry(archive, file.Path, file.Executable);
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                long size = 0;
                using (var source = file.Open())
                using (var target = entry.Open())
                {
                    int read;
                    while ((read = source.Read(buffer)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                        target.Write(buffer, 0, read);
                        size += read;
                    }
                }

                listed.Add(new ManifestFile(file.Path, size, Convert.ToHexStringLower(hash.GetHashAndReset()), file.Executable));
            }

            // The manifest goes last: it is written once every hash is known, in a single pass over the files.
            var manifest = new PackageManifest { Service = service, Files = listed };
            using var manifestStream = NewEntry(archive, PackageManifest.FileName, executable: false).Open();
            JsonSerializer.Serialize(manifestStream, manifest, PackageManifest.JsonOptions);
            return manifest;
        }
    }

    private static ZipArchiveEntry NewEntry(ZipArchive archive, string path, bool executable)
    {
        var entry = archive.CreateEntry(path, CompressionLevel.Optimal);
        entry.LastWriteTime = FixedTimestamp;
        entry.ExternalAttributes = (executable ? ExecutableMode : PlainMode) << 16;
        return entry;
    }
}
