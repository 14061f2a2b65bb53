using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Heddle.Model.Packages;

namespace Heddle.Model.Tests.Packages;

/// <summary>Builds packages in memory: good ones through <see cref="PackageWriter"/>, hostile ones entry by entry.</summary>
internal static class TestPackages
{
    public const string ServiceYaml = "name: hello\nroles:\n  web: { entryPoint: { command: ./run.sh } }\n";

    public static byte[] Valid(params (string Path, string Content)[] extra)
    {
        var files = new List<PackageSourceFile>
        {
            Text(PackageLayout.ServiceFile, ServiceYaml),
            Text("roles/web/run.sh", "#!/bin/sh\necho hi\n", executable: true),
            Text("roles/web/data/greeting.txt", "hello"),
        };
        files.AddRange(extra.Select(e => Text(e.Path, e.Content)));
        using var output = new MemoryStream();
        PackageWriter.Write("hello", files, output);
        return output.ToArray();
    }

    public static PackageSourceFile Text(string path, string content, bool executable = false) =>
        new(path, executable, () => new MemoryStream(Encoding.UTF8.GetBytes(content)));

    /// <summary>A raw zip with exactly these entries (a manifest is added for the files unless told otherwise).</summary>
    public static byte[] Raw(IEnumerable<RawEntry> entries, bool addManifest = true, Func<ManifestFile, ManifestFile>? editManifest = null)
    {
        var list = entries.ToList();
        using var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in list)
            {
                var zipEntry = zip.CreateEntry(entry.Path, entry.Level);
                zipEntry.ExternalAttributes = entry.Mode << 16;
                using var stream = zipEntry.Open();
                stream.Write(entry.Content);
            }

            if (addManifest)
            {
                var files = list.Where(e => !e.Path.EndsWith('/'))
                    .Select(e => new ManifestFile(e.Path, e.Content.Length, Sha256Hex.Of(e.Content)))
                    .Select(editManifest ?? (f => f))
                    .ToList();
                var manifest = new PackageManifest { Service = "hello", Files = files };
                using var stream = zip.CreateEntry(PackageManifest.FileName).Open();
                JsonSerializer.Serialize(stream, manifest, PackageManifest.JsonOptions);
            }
        }

        return output.ToArray();
    }

    public static RawEntry Service => new(PackageLayout.ServiceFile, Encoding.UTF8.GetBytes(ServiceYaml));

    public static RawEntry File(string path, string content = "x") => new(path, Encoding.UTF8.GetBytes(content));
}

internal sealed record RawEntry(string Path, byte[] Content, int Mode = 0x81A4, CompressionLevel Level = CompressionLevel.Optimal);
