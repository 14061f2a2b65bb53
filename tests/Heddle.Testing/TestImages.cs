using System.Diagnostics;
using System.Formats.Tar;

namespace Heddle.Testing;

/// <summary>
/// Tiny base images for container tests, made in a second from host files instead of a minute of mmdebstrap:
/// busybox-static with a link per applet, and optionally the host's python3 with the libraries it loads. Each is
/// built once per machine and content of its inputs (cached under the temp folder) and reused by every test.
/// </summary>
public static class TestImages
{
    private static readonly Lock Gate = new();
    private static readonly string Cache = Path.Combine(Path.GetTempPath(), "heddle-test-images");

    /// <summary>An uncompressed root file system tarball: /bin (busybox applets), /tmp (1777), /etc/passwd, and python3 (with ctypes) when asked.</summary>
    public static string Tar(bool python = false)
    {
        var inputs = new List<string> { "/bin/busybox" };
        if (python)
        {
            var binary = Path.GetFullPath(ResolveLinks("/usr/bin/python3"));
            inputs.Add(binary);
            // ctypes, with the libffi it loads: a test can make a raw syscall (what a seccomp filter must refuse).
            inputs.AddRange(Directory.EnumerateFiles($"/usr/lib/{Path.GetFileName(binary)}/lib-dynload", "_ctypes.*.so"));
        }

        var key = string.Join('|', inputs.Select(i => $"{i}:{new FileInfo(i).Length}:{File.GetLastWriteTimeUtc(i).Ticks}"));
        var name = $"{(python ? "python" : "busybox")}-{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)))[..12]}.tar";
        var path = Path.Combine(Cache, name);
        lock (Gate)
        {
            if (File.Exists(path))
            {
                return path;
            }

            Directory.CreateDirectory(Cache);
            var partial = $"{path}.{Environment.ProcessId}.partial";
            using (var file = File.Create(partial))
            using (var tar = new TarWriter(file, TarEntryFormat.Pax))
            {
                foreach (var dir in new[] { "bin", "etc", "tmp", "proc", "sys", "dev", "run", "usr", "usr/bin" })
                {
                    tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir + "/") { Mode = dir == "tmp" ? (UnixFileMode)0b1_111_111_111 : (UnixFileMode)0b111_101_101 });
                }

                AddFile(tar, "/bin/busybox", "bin/busybox");
                foreach (var applet in Applets())
                {
                    tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, $"bin/{applet}") { LinkName = "busybox" });
                }

                AddText(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n");
                AddText(tar, "etc/group", "root:x:0:\nnogroup:x:65534:\n");
                if (python)
                {
                    AddPython(tar, inputs[1], inputs.Skip(2));
                }
            }

            File.Move(partial, path, overwrite: true);
            return path;
        }
    }

    private static void AddPython(TarWriter tar, string binary, IEnumerable<string> extensions)
    {
        var added = new HashSet<string>(StringComparer.Ordinal);
        AddFileWithParents(tar, binary, added);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "usr/bin/python3") { LinkName = Path.GetFileName(binary) });
        foreach (var library in new[] { binary }.Concat(extensions).SelectMany(SharedLibraries))
        {
            AddFileWithParents(tar, library, added);
        }

        var version = Path.GetFileName(binary); // python3.11
        var stdlib = $"/usr/lib/{version}";
        foreach (var file in Directory.EnumerateFiles(stdlib, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(stdlib, file);
            if (relative.StartsWith("test/", StringComparison.Ordinal) || relative.Contains("__pycache__", StringComparison.Ordinal) || new FileInfo(file).LinkTarget is not null)
            {
                continue;
            }

            AddFileWithParents(tar, file, added);
        }
    }

    private static void AddFileWithParents(TarWriter tar, string hostPath, HashSet<string> added)
    {
        var name = hostPath.TrimStart('/');
        var parents = new Stack<string>();
        for (var dir = Path.GetDirectoryName(name); !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
        {
            parents.Push(dir);
        }

        foreach (var dir in parents)
        {
            if (added.Add(dir) && dir is not "usr" and not "usr/bin")
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir + "/") { Mode = (UnixFileMode)0b111_101_101 });
            }
        }

        if (added.Add(name))
        {
            AddFile(tar, ResolveLinks(hostPath), name);
        }
    }

    private static void AddFile(TarWriter tar, string hostPath, string name)
    {
        using var content = File.OpenRead(hostPath);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = content, Mode = File.GetUnixFileMode(hostPath) });
    }

    private static void AddText(TarWriter tar, string name, string text)
    {
        using var content = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text));
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = content, Mode = (UnixFileMode)0b110_100_100 });
    }

    private static string ResolveLinks(string path) => new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;

    private static IEnumerable<string> Applets() => Run("/bin/busybox", "--list").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Where(a => a != "busybox" && a.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '['));

    /// <summary>The absolute paths ldd names (the loader included).</summary>
    private static IEnumerable<string> SharedLibraries(string binary) =>
        Run("ldd", binary).Split('\n').Select(l => l.Trim().Split(' ')).Select(parts => parts.Length >= 3 && parts[1] == "=>" ? parts[2] : parts[0])
            .Where(p => p.StartsWith('/')).Distinct();

    private static string Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, UseShellExecute = false };
        args.ToList().ForEach(start.ArgumentList.Add);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output;
    }
}
