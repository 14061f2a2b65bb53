using System.IO.Compression;
using System.Text;

namespace Heddle.Packaging.HostImages;

/// <summary>How the initramfs is stored: gzip (smaller to send, the kernel inflates it) or a plain cpio (larger, no inflating).</summary>
public enum InitramfsCompression
{
    Gzip,
    None,
}

/// <summary>
/// Writes a host image's initramfs: busybox (the user space besides the agent and the util-linux programs it runs), the
/// kernel modules of <see cref="HostImageLayout.Modules"/>, the heddle executable, those programs and their libraries, and the scripts of
/// <see cref="HostImageLayout"/>. The file appears whole or not at all.
/// </summary>
public static class HostImageBuilder
{
    private const int Executable = 0b111_101_101;
    private const int Readable = 0b110_100_100;

    public static void WriteInitramfs(string path, string imageName, HostImageSources sources, InitramfsCompression compression = InitramfsCompression.Gzip)
    {
        var temporary = $"{path}.{Guid.NewGuid():N}.partial";
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                if (compression == InitramfsCompression.Gzip)
                {
                    using var gzip = new GZipStream(file, CompressionLevel.Fastest, leaveOpen: true);
                    Write(new CpioWriter(gzip), imageName, sources);
                }
                else
                {
                    Write(new CpioWriter(file), imageName, sources);
                }

                file.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    private static void Write(CpioWriter cpio, string imageName, HostImageSources sources)
    {
        var folders = new HashSet<string>(StringComparer.Ordinal);
        void Folder(string name)
        {
            if (name.Length == 0 || !folders.Add(name))
            {
                return;
            }

            Folder(Path.GetDirectoryName(name) ?? string.Empty);
            cpio.Directory(name);
        }

        foreach (var name in (string[])["bin", "sbin", "usr/bin", "usr/sbin", "usr/share/udhcpc", "etc/init.d", "etc/heddle", "lib/modules", "proc", "sys", "dev", "tmp", "run", "root", "var/lib/heddle"])
        {
            Folder(name);
        }

        cpio.File("bin/busybox", sources.Busybox, Executable);
        cpio.Symlink("init", "/bin/busybox");
        cpio.Symlink("bin/sh", "busybox");
        cpio.File("etc/inittab", Ascii(HostImageLayout.Inittab), Readable);
        var modules = string.Join(' ', HostImageLayout.Modules.Select(Path.GetFileName));
        cpio.File("etc/init.d/rcS", Ascii(HostImageLayout.Rcs.Replace("MODULES", modules, StringComparison.Ordinal)), Executable);
        cpio.File("etc/heddle/agent.sh", Ascii(HostImageLayout.AgentScript), Executable);
        cpio.File(HostImageLayout.ImageNameFile, Ascii(imageName + "\n"), Readable);
        cpio.File("usr/share/udhcpc/default.script", Ascii(HostImageLayout.LeaseScript), Executable);
        cpio.File("etc/hosts", Ascii("127.0.0.1 localhost\n"), Readable);
        cpio.File("etc/passwd", Ascii("root:x:0:0:root:/root:/bin/sh\n"), Readable);
        cpio.File("etc/group", Ascii("root:x:0:\n"), Readable);
        foreach (var module in HostImageLayout.Modules)
        {
            cpio.File($"lib/modules/{Path.GetFileName(module)}.ko", Path.Combine(sources.ModulesDirectory, "kernel", module + ".ko"), Readable);
        }

        foreach (var program in sources.Programs)
        {
            var name = program.TrimStart('/');
            Folder(Path.GetDirectoryName(name)!);
            cpio.File(name, program, Executable);
        }

        foreach (var library in sources.Libraries)
        {
            var name = library.TrimStart('/');
            Folder(Path.GetDirectoryName(name)!);
            cpio.File(name, library, Executable);
        }

        cpio.File("usr/bin/heddle", sources.Heddle, Executable);
        cpio.Trailer();
    }

    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text.ReplaceLineEndings("\n"));
}
