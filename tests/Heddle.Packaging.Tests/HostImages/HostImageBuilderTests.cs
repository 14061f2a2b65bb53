using System.IO.Compression;
using System.Text;
using Heddle.Packaging.HostImages;

namespace Heddle.Packaging.Tests.HostImages;

/// <summary>The initramfs a host image is made of, read back entry by entry: busybox as init, the scripts, the modules, heddle and its libraries.</summary>
public sealed class HostImageBuilderTests
{
    [Theory]
    [InlineData(InitramfsCompression.Gzip)]
    [InlineData(InitramfsCompression.None)]
    public void WriteInitramfs_HoldsInitTheAgentScriptModulesHeddleAndItsLibraries(InitramfsCompression compression)
    {
        using var temp = new TempDirectory();
        var modules = Path.Combine(temp.Path, "modules");
        foreach (var module in HostImageLayout.Modules)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(modules, "kernel", module))!);
            File.WriteAllText(Path.Combine(modules, "kernel", module + ".ko"), module);
        }

        File.WriteAllText(Path.Combine(temp.Path, "busybox"), "BUSYBOX");
        File.WriteAllText(Path.Combine(temp.Path, "heddle"), "HEDDLE");
        File.WriteAllText(Path.Combine(temp.Path, "libc.so.6"), "LIBC");
        File.WriteAllText(Path.Combine(temp.Path, "setpriv"), "SETPRIV");
        var sources = new HostImageSources("6.1.0-57-cloud-amd64", "/boot/vmlinuz", modules, Path.Combine(temp.Path, "busybox"), Path.Combine(temp.Path, "heddle"),
            [Path.Combine(temp.Path, "setpriv")], [Path.Combine(temp.Path, "libc.so.6")]);

        HostImageBuilder.WriteInitramfs(Path.Combine(temp.Path, "initrd.img"), "bookworm-1", sources, compression);

        var entries = Read(Path.Combine(temp.Path, "initrd.img"));
        Assert.Equal("/bin/busybox", entries["init"].Text);
        Assert.Equal(0xA000, entries["init"].Mode & 0xF000);
        Assert.Equal("BUSYBOX", entries["bin/busybox"].Text);
        Assert.Equal("HEDDLE", entries["usr/bin/heddle"].Text);
        Assert.Equal("LIBC", entries[Path.Combine(temp.Path, "libc.so.6").TrimStart('/')].Text);
        Assert.Equal("SETPRIV", entries[Path.Combine(temp.Path, "setpriv").TrimStart('/')].Text);
        Assert.Equal("bookworm-1\n", entries["etc/heddle/host-image"].Text);
        Assert.Contains("::respawn:/etc/heddle/agent.sh", entries["etc/inittab"].Text);
        Assert.Contains("exec /usr/bin/heddle agent --controller \"$controller\" --name \"$node\" --fault-domain \"$fault_domain\"", entries["etc/heddle/agent.sh"].Text);
        Assert.Contains("for m in virtio_ring virtio virtio_pci_legacy_dev", entries["etc/init.d/rcS"].Text);
        Assert.Contains("mount -t cgroup2", entries["etc/init.d/rcS"].Text);
        Assert.Equal("drivers/net/virtio_net", entries["lib/modules/virtio_net.ko"].Text);
        Assert.Equal(0b111_101_101, entries["usr/bin/heddle"].Mode & 0xFFF);
        Assert.True(entries.Keys.ToList().IndexOf("usr/bin") < entries.Keys.ToList().IndexOf("usr/bin/heddle"), "a folder comes before what it holds");
        Assert.Single(Directory.GetFiles(temp.Path, "initrd.img*"));
    }

    [Fact]
    public void CheckSingleFile_RefusesWhatIsNotASingleFileDotNetExecutable()
    {
        using var temp = new TempDirectory();
        File.WriteAllText(Path.Combine(temp.Path, "script"), "#!/bin/sh\n");

        var missing = Assert.Throws<HostImageException>(() => HostImageSources.CheckSingleFile(Path.Combine(temp.Path, "nothing")));
        var notElf = Assert.Throws<HostImageException>(() => HostImageSources.CheckSingleFile(Path.Combine(temp.Path, "script")));
        var notBundle = Assert.Throws<HostImageException>(() => HostImageSources.CheckSingleFile("/bin/true"));

        Assert.Contains("does not exist", missing.Message);
        Assert.Contains("is not an ELF executable", notElf.Message);
        Assert.Contains("is not a .NET single-file executable", notBundle.Message);
    }

    /// <summary>The entries of a newc cpio, plain or gzip'd, in order: name → (mode, content).</summary>
    private static Dictionary<string, (int Mode, string Text)> Read(string path)
    {
        var data = File.ReadAllBytes(path);
        if (data[0] == 0x1f && data[1] == 0x8b)
        {
            using var gzip = new GZipStream(new MemoryStream(data), CompressionMode.Decompress);
            using var bytes = new MemoryStream();
            gzip.CopyTo(bytes);
            data = bytes.ToArray();
        }

        var entries = new Dictionary<string, (int, string)>(StringComparer.Ordinal);
        var at = 0;
        while (true)
        {
            var header = Encoding.ASCII.GetString(data, at, 110);
            Assert.StartsWith("070701", header);
            int Field(int index) => Convert.ToInt32(header.Substring(6 + (index * 8), 8), 16);
            var (mode, size, nameSize) = (Field(1), Field(6), Field(11));
            var name = Encoding.UTF8.GetString(data, at + 110, nameSize - 1);
            at = Align(at + 110 + nameSize);
            if (name == "TRAILER!!!")
            {
                return entries;
            }

            entries[name] = (mode, Encoding.UTF8.GetString(data, at, size));
            at = Align(at + size);
        }
    }

    private static int Align(int offset) => (offset + 3) & ~3;
}
