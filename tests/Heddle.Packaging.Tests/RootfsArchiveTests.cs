using System.Formats.Tar;

namespace Heddle.Packaging.Tests;

/// <summary>
/// Base image tarballs are unpacked by root on every node: a hostile one must not write outside its tree (through
/// `..`, an absolute name, or a symbolic link it made itself), plant device files or setuid programs, or exhaust the
/// disk; it is refused with a sentence that names the entry, and nothing is left at the target.
/// </summary>
public sealed class RootfsArchiveTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static MemoryStream Tar(params PaxTarEntry[] entries)
    {
        var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var entry in entries)
            {
                writer.WriteEntry(entry);
            }
        }

        stream.Position = 0;
        return stream;
    }

    private static PaxTarEntry File(string name, string text, UnixFileMode mode = (UnixFileMode)0b110_100_100) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text)), Mode = mode };

    private static PaxTarEntry Dir(string name) => new(TarEntryType.Directory, name) { Mode = (UnixFileMode)0b111_101_101 };

    private static PaxTarEntry Link(string name, string target) => new(TarEntryType.SymbolicLink, name) { LinkName = target };

    [Fact]
    public void ARootFileSystem_IsUnpackedWithLinksAsLinks_AndWithoutDevicesOrSetuidBits()
    {
        var target = _directory.Combine("rootfs");
        var summary = RootfsArchive.Extract(Tar(
            Dir("./"), Dir("./usr/"), Dir("./usr/bin/"), File("./usr/bin/tool", "#!/bin/sh\n", (UnixFileMode)0b100_111_101_101),
            Link("./bin", "usr/bin"), Link("./usr/bin/absolute", "/usr/bin/tool"),
            new PaxTarEntry(TarEntryType.HardLink, "./usr/bin/again") { LinkName = "./usr/bin/tool" },
            new PaxTarEntry(TarEntryType.CharacterDevice, "./dev/null") { DeviceMajor = 1, DeviceMinor = 3 },
            Dir("./tmp/")), target, RootfsLimits.Default);

        Assert.Equal((1, 3, 1), (summary.Files, summary.Links, summary.DevicesSkipped));
        Assert.Equal("usr/bin", new FileInfo(Path.Combine(target, "bin")).LinkTarget);
        Assert.Equal("/usr/bin/tool", new FileInfo(Path.Combine(target, "usr", "bin", "absolute")).LinkTarget); // followed only inside the container
        Assert.False(System.IO.File.Exists(Path.Combine(target, "dev", "null")));
        var mode = System.IO.File.GetUnixFileMode(Path.Combine(target, "usr", "bin", "tool"));
        Assert.False(mode.HasFlag(UnixFileMode.SetUser), "the setuid bit was kept");
        Assert.True(mode.HasFlag(UnixFileMode.UserExecute));
        Assert.Equal("#!/bin/sh\n", System.IO.File.ReadAllText(Path.Combine(target, "usr", "bin", "again")));
    }

    [Theory]
    [InlineData("through a link it made", "lies under 'etc'")]
    [InlineData("climbing out", "climbs out of the tree")]
    [InlineData("hard link outside", "not a file unpacked before it")]
    [InlineData("not a tar", "not a tar archive")]
    public void AHostileImage_IsRefused_AndNothingIsLeftAtTheTarget(string attack, string expected)
    {
        var outside = _directory.Combine("outside");
        Directory.CreateDirectory(outside);
        var archive = attack switch
        {
            "through a link it made" => Tar(Dir("./"), Link("./etc", outside), File("./etc/passwd", "owned")),
            "climbing out" => Tar(Dir("./"), File("./../../outside/planted", "owned")),
            "hard link outside" => Tar(Dir("./"), new PaxTarEntry(TarEntryType.HardLink, "./shadow") { LinkName = "/etc/shadow" }),
            _ => new MemoryStream(System.Text.Encoding.UTF8.GetBytes(new string('x', 2000))),
        };
        var target = _directory.Combine("rootfs");

        var refused = Assert.Throws<RootfsArchiveException>(() => RootfsArchive.Extract(archive, target, RootfsLimits.Default));

        Assert.Contains(expected, refused.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
        Assert.False(Directory.Exists(target));
        Assert.Single(Directory.EnumerateFileSystemEntries(_directory.Path)); // no partial folder either
    }

    [Fact]
    public void AnImageLargerThanTheLimit_IsRefused_WhenChecked()
    {
        var refused = Assert.Throws<RootfsArchiveException>(() =>
            RootfsArchive.Check(Tar(Dir("./"), File("./a", new string('a', 600)), File("./b", new string('b', 600))), RootfsLimits.Default with { MaxUnpackedBytes = 1000 }));
        Assert.Contains("more than 1000 bytes (at './b')", refused.Message);
    }
}
