using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;

namespace Heddle.Packaging.Tests;

public sealed class PackageBuilderTests
{
    private const string Service = "name: hello\nroles:\n  web: { entryPoint: { command: ./run.sh } }\n  worker: { entryPoint: { command: ./work.sh } }\n";

    private static TempDirectory SourceTree()
    {
        var tree = new TempDirectory();
        tree.Write("src/service.yaml", Service);
        tree.Write("src/roles/web/run.sh", "#!/bin/sh\necho web\n", executable: true);
        tree.Write("src/roles/web/wwwroot/index.html", "<p>hi</p>");
        tree.Write("src/roles/worker/work.sh", "#!/bin/sh\necho work\n", executable: true);
        tree.Write("src/notes.txt", "not part of the package");
        return tree;
    }

    [Fact]
    public void Pack_SameTreeWithNewTimestamps_GivesTheSameHash()
    {
        using var tree = SourceTree();
        var bag = new DiagnosticBag();

        var first = PackageBuilder.Pack(tree.Combine("src"), tree.Combine("a.hpkg"), bag)!;
        foreach (var file in Directory.EnumerateFiles(tree.Combine("src"), "*", SearchOption.AllDirectories))
        {
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddDays(-3));
        }

        var second = PackageBuilder.Pack(tree.Combine("src"), tree.Combine("b.hpkg"), bag)!;

        Assert.Empty(bag.Items);
        Assert.Equal(first.PackageHash, second.PackageHash);
        Assert.Equal(File.ReadAllBytes(tree.Combine("a.hpkg")), File.ReadAllBytes(tree.Combine("b.hpkg")));
        Assert.Equal(Sha256Hex.Of(File.ReadAllBytes(tree.Combine("a.hpkg"))), first.PackageHash);
    }

    [Fact]
    public void Pack_TakesServiceYamlAndRoleFoldersOnly()
    {
        using var tree = SourceTree();

        var result = PackageBuilder.Pack(tree.Combine("src"), tree.Combine("a.hpkg"), new DiagnosticBag())!;

        Assert.Equal(["roles/web/run.sh", "roles/web/wwwroot/index.html", "roles/worker/work.sh", "service.yaml"], result.Manifest.Files.Select(f => f.Path));
    }

    [Fact]
    public void PackThenExtract_RestoresEveryFileAndKeepsExecutablesExecutable()
    {
        using var tree = SourceTree();
        PackageBuilder.Pack(tree.Combine("src"), tree.Combine("a.hpkg"), new DiagnosticBag());
        var bag = new DiagnosticBag();
        using var stream = File.OpenRead(tree.Combine("a.hpkg"));
        using var package = PackageArchive.Open(stream, "a.hpkg", PackageLimits.Default, bag)!;

        Assert.True(PackageExtractor.Extract(package, tree.Combine("out"), bag));

        Assert.Empty(bag.Items);
        Assert.Equal("<p>hi</p>", File.ReadAllText(tree.Combine("out", "roles", "web", "wwwroot", "index.html")));
        Assert.True((File.GetUnixFileMode(tree.Combine("out", "roles", "web", "run.sh")) & UnixFileMode.UserExecute) != 0);
        Assert.True((File.GetUnixFileMode(tree.Combine("out", "roles", "web", "wwwroot", "index.html")) & UnixFileMode.UserExecute) == 0);
    }

    [Fact]
    public void Pack_SymbolicLinkInRoleFolder_IsRefusedAndWritesNothing()
    {
        using var tree = SourceTree();
        File.CreateSymbolicLink(tree.Combine("src", "roles", "web", "passwd"), "/etc/passwd");
        var bag = new DiagnosticBag();

        Assert.Null(PackageBuilder.Pack(tree.Combine("src"), tree.Combine("a.hpkg"), bag));

        Assert.Equal(DiagnosticCodes.SymbolicLink, Assert.Single(bag.Items).Code);
        Assert.Empty(Directory.EnumerateFiles(tree.Path));
    }

    [Fact]
    public void Pack_MissingRoleFolder_IsRefused()
    {
        using var tree = SourceTree();
        Directory.Delete(tree.Combine("src", "roles", "worker"), recursive: true);
        var bag = new DiagnosticBag();

        Assert.Null(PackageBuilder.Pack(tree.Combine("src"), tree.Combine("a.hpkg"), bag));

        Assert.Contains("role 'worker' has no folder roles/worker/", Assert.Single(bag.Items, d => d.Code == DiagnosticCodes.RoleFolderMissing).Message);
    }

    [Fact]
    public void Pack_FolderOfAnUndeclaredRole_IsRefused()
    {
        using var tree = SourceTree();
        tree.Write("src/roles/db/x", "x");
        var bag = new DiagnosticBag();

        Assert.Null(PackageBuilder.Pack(tree.Combine("src"), tree.Combine("a.hpkg"), bag));

        Assert.Equal(DiagnosticCodes.UnknownRoleFolder, Assert.Single(bag.Items).Code);
    }

    [Fact]
    public void Pack_InvalidDefinition_IsRefusedAndLeavesAnExistingPackageAlone()
    {
        using var tree = SourceTree();
        File.WriteAllText(tree.Combine("a.hpkg"), "previous");
        tree.Write("src/service.yaml", Service.Replace("./run.sh", "./run.sh, argz: []"));
        var bag = new DiagnosticBag();

        Assert.Null(PackageBuilder.Pack(tree.Combine("src"), tree.Combine("a.hpkg"), bag));

        Assert.Equal(DiagnosticCodes.UnknownKey, Assert.Single(bag.Items).Code);
        Assert.Equal("previous", File.ReadAllText(tree.Combine("a.hpkg")));
    }
}
