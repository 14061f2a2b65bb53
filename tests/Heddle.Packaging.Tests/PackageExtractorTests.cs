using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;

namespace Heddle.Packaging.Tests;

public sealed class PackageExtractorTests
{
    /// <summary>A package whose last file's content disagrees with the manifest: found only while extracting.</summary>
    private static byte[] PackageWithTamperedLastFile()
    {
        var service = "name: hello\nroles:\n  web: { entryPoint: { command: x } }\n"u8.ToArray();
        var files = new (string Path, byte[] Content)[] { ("roles/web/a", "aaaa"u8.ToArray()), ("roles/web/b", "bbbb"u8.ToArray()), ("service.yaml", service) };
        using var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (path, content) in files)
            {
                using var stream = zip.CreateEntry(path).Open();
                stream.Write(path == "roles/web/b" ? "BBBB"u8.ToArray() : content);
            }

            var manifest = new PackageManifest { Service = "hello", Files = [.. files.Select(f => new ManifestFile(f.Path, f.Content.Length, Sha256Hex.Of(f.Content)))] };
            using var manifestStream = zip.CreateEntry(PackageManifest.FileName).Open();
            manifestStream.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(manifest, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase })));
        }

        return output.ToArray();
    }

    [Fact]
    public void Extract_ContentThatFailsVerificationHalfway_LeavesNoPartialTree()
    {
        using var tree = new TempDirectory();
        var bag = new DiagnosticBag();
        using var package = PackageArchive.Open(new MemoryStream(PackageWithTamperedLastFile()), "t.hpkg", PackageLimits.Default, bag)!;
        Assert.NotNull(package);

        Assert.False(PackageExtractor.Extract(package, tree.Combine("out"), bag));

        Assert.Equal(DiagnosticCodes.ManifestMismatch, Assert.Single(bag.Items).Code);
        Assert.Empty(Directory.EnumerateFileSystemEntries(tree.Path));
    }

    [Fact]
    public void Extract_IntoAnExistingFolder_IsRefusedAndTouchesNothing()
    {
        using var tree = new TempDirectory();
        tree.Write("out/keep.txt", "mine");
        var bag = new DiagnosticBag();
        using var package = PackageArchive.Open(new MemoryStream(PackageWithTamperedLastFile()), "t.hpkg", PackageLimits.Default, bag)!;

        Assert.False(PackageExtractor.Extract(package, tree.Combine("out"), bag));

        Assert.Equal(DiagnosticCodes.TargetExists, Assert.Single(bag.Items).Code);
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(tree.Combine("out")).Select(Path.GetFileName));
    }
}
