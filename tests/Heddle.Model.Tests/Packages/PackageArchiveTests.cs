using System.IO.Compression;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;

namespace Heddle.Model.Tests.Packages;

public sealed class PackageArchiveTests
{
    private static (PackageArchive? Package, IReadOnlyList<Diagnostic> Diagnostics) Open(byte[] bytes, PackageLimits? limits = null)
    {
        var bag = new DiagnosticBag();
        var package = PackageArchive.Open(new MemoryStream(bytes), "test.hpkg", limits ?? PackageLimits.Default, bag);
        if (package is not null)
        {
            package.VerifyContent(bag);
        }

        return (bag.HasErrors ? null : package, bag.Items);
    }

    private static void AssertRefused(byte[] bytes, string code, PackageLimits? limits = null)
    {
        var (package, diagnostics) = Open(bytes, limits);
        Assert.Null(package);
        Assert.Contains(diagnostics, d => d.Code == code);
    }

    [Fact]
    public void Write_SameFilesTwice_GivesTheSameBytes()
    {
        var first = TestPackages.Valid();
        var second = TestPackages.Valid();

        Assert.Equal(Sha256Hex.Of(first), Sha256Hex.Of(second));
    }

    [Fact]
    public void Write_FilesGivenInAnotherOrder_GivesTheSameBytes()
    {
        var files = new[]
        {
            TestPackages.Text("roles/web/b", "b"), TestPackages.Text(PackageLayout.ServiceFile, TestPackages.ServiceYaml), TestPackages.Text("roles/web/a", "a"),
        };
        using var one = new MemoryStream();
        using var two = new MemoryStream();

        PackageWriter.Write("hello", files, one);
        PackageWriter.Write("hello", files.Reverse(), two);

        Assert.Equal(one.ToArray(), two.ToArray());
    }

    [Fact]
    public void Write_DifferentContent_GivesADifferentHash()
    {
        Assert.NotEqual(Sha256Hex.Of(TestPackages.Valid()), Sha256Hex.Of(TestPackages.Valid(("roles/web/extra", "1"))));
    }

    [Fact]
    public void Write_KeepsExecutableModesAndFixedTimestamps()
    {
        using var zip = new ZipArchive(new MemoryStream(TestPackages.Valid()));

        Assert.Equal(0x81ED, (int)((uint)zip.GetEntry("roles/web/run.sh")!.ExternalAttributes >> 16));
        Assert.Equal(0x81A4, (int)((uint)zip.GetEntry("roles/web/data/greeting.txt")!.ExternalAttributes >> 16));
        Assert.All(zip.Entries, e => Assert.Equal(PackageWriter.FixedTimestamp.DateTime, e.LastWriteTime.DateTime));
    }

    [Fact]
    public void Open_ValidPackage_ReadsManifestAndDefinition()
    {
        var (package, diagnostics) = Open(TestPackages.Valid());

        Assert.Empty(diagnostics);
        Assert.Equal("hello", package!.Definition.Name);
        Assert.Equal(["roles/web/data/greeting.txt", "roles/web/run.sh", "service.yaml"], package.Manifest.Files.Select(f => f.Path));
        Assert.True(package.Manifest.Files.Single(f => f.Path == "roles/web/run.sh").Executable);
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("../escape")]
    [InlineData("roles/web/../../escape")]
    [InlineData("roles\\web\\x")]
    [InlineData("C:/windows")]
    [InlineData("roles//web/x")]
    [InlineData("roles/./web/x")]
    public void Open_UnsafePath_IsRefused(string path)
    {
        AssertRefused(TestPackages.Raw([TestPackages.Service, TestPackages.File(path)]), DiagnosticCodes.UnsafePath);
    }

    [Fact]
    public void Open_SymbolicLink_IsRefused()
    {
        var link = new RawEntry("roles/web/passwd", "/etc/passwd"u8.ToArray(), Mode: 0xA1FF);

        AssertRefused(TestPackages.Raw([TestPackages.Service, link]), DiagnosticCodes.SymbolicLink);
    }

    [Fact]
    public void Open_DuplicateEntry_IsRefused()
    {
        AssertRefused(TestPackages.Raw([TestPackages.Service, TestPackages.File("roles/web/a"), TestPackages.File("roles/web/a", "y")], addManifest: false),
            DiagnosticCodes.DuplicateEntry);
    }

    [Fact]
    public void Open_EntryOverTheLimit_IsRefused()
    {
        var limits = new PackageLimits { MaxEntryBytes = 100 };

        AssertRefused(TestPackages.Raw([TestPackages.Service, TestPackages.File("roles/web/big", new string('x', 101))]), DiagnosticCodes.EntryTooLarge, limits);
    }

    [Fact]
    public void Open_TotalOverTheLimit_IsRefused()
    {
        var limits = new PackageLimits { MaxUnpackedBytes = 150 };

        AssertRefused(TestPackages.Raw([TestPackages.Service, TestPackages.File("roles/web/a", new string('x', 60)), TestPackages.File("roles/web/b", new string('y', 60))]),
            DiagnosticCodes.PackageTooLarge, limits);
    }

    [Fact]
    public void Open_TooManyEntries_IsRefused()
    {
        var limits = new PackageLimits { MaxEntries = 10 };
        var entries = Enumerable.Range(0, 10).Select(i => TestPackages.File($"roles/web/f{i}")).Prepend(TestPackages.Service);

        AssertRefused(TestPackages.Raw(entries), DiagnosticCodes.TooManyEntries, limits);
    }

    [Fact]
    public void Open_ZipBomb_IsRefusedByItsCompressionRatio()
    {
        var bomb = new RawEntry("roles/web/zeros", new byte[8 << 20], Level: CompressionLevel.SmallestSize);

        AssertRefused(TestPackages.Raw([TestPackages.Service, bomb]), DiagnosticCodes.CompressionRatio);
    }

    [Fact]
    public void Open_ManifestHashDisagreesWithContent_IsRefused()
    {
        var bytes = TestPackages.Raw([TestPackages.Service, TestPackages.File("roles/web/a")],
            editManifest: f => f.Path == "roles/web/a" ? f with { Sha256 = new string('0', 64) } : f);

        AssertRefused(bytes, DiagnosticCodes.ManifestMismatch);
    }

    [Fact]
    public void Open_ManifestSizeDisagreesWithContent_IsRefused()
    {
        AssertRefused(TestPackages.Raw([TestPackages.Service, TestPackages.File("roles/web/a")], editManifest: f => f with { Size = f.Size + 1 }),
            DiagnosticCodes.ManifestMismatch);
    }

    [Fact]
    public void Open_FileNotInManifest_IsRefused()
    {
        AssertRefused(TestPackages.Raw([TestPackages.Service, TestPackages.File("roles/web/a")], editManifest: f => f.Path == "roles/web/a" ? f with { Path = "roles/web/b" } : f),
            DiagnosticCodes.ManifestMismatch);
    }

    [Fact]
    public void Open_NoManifest_IsRefused()
    {
        AssertRefused(TestPackages.Raw([TestPackages.Service], addManifest: false), DiagnosticCodes.MissingPackageFile);
    }

    [Fact]
    public void Open_NoServiceDefinition_IsRefused()
    {
        AssertRefused(TestPackages.Raw([TestPackages.File("roles/web/a")]), DiagnosticCodes.MissingPackageFile);
    }

    [Fact]
    public void Open_InvalidServiceDefinition_ReportsItsErrorsInsideThePackage()
    {
        var bad = new RawEntry(PackageLayout.ServiceFile, "name: hello\nroles:\n  web: { entryPoint: { command: x }, size: huge }\n"u8.ToArray());

        var (package, diagnostics) = Open(TestPackages.Raw([bad]));

        Assert.Null(package);
        var d = Assert.Single(diagnostics);
        Assert.Equal((DiagnosticCodes.NotAllowedValue, "test.hpkg!service.yaml", 3), (d.Code, d.Location.File, d.Location.Line));
    }

    [Fact]
    public void Open_FileOutsideRoleFolders_IsRefused()
    {
        AssertRefused(TestPackages.Raw([TestPackages.Service, TestPackages.File("roles/db/x"), TestPackages.File("loose.txt")]), DiagnosticCodes.UnknownRoleFolder);
    }

    [Fact]
    public void Open_TruncatedFile_IsRefused()
    {
        var bytes = TestPackages.Valid();

        AssertRefused(bytes[..(bytes.Length / 2)], DiagnosticCodes.NotAZip);
    }

    [Fact]
    public void Open_NotAZip_IsRefused()
    {
        AssertRefused("this is not a zip file at all"u8.ToArray(), DiagnosticCodes.NotAZip);
    }

    [Fact]
    public void Open_EmptyFile_IsRefused()
    {
        AssertRefused([], DiagnosticCodes.NotAZip);
    }

    [Fact]
    public void Open_CorruptedContentWithIntactDirectory_IsRefusedWhenRead()
    {
        var bytes = TestPackages.Raw([TestPackages.Service, new RawEntry("roles/web/a", new byte[4096], Level: CompressionLevel.NoCompression)]);
        var at = FindLocalData(bytes, new byte[4096]);
        bytes[at + 100] ^= 0xFF;

        AssertRefused(bytes, DiagnosticCodes.ManifestMismatch);
    }

    private static int FindLocalData(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);
}
