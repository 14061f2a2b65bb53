using System.Diagnostics;

namespace Heddle.Packaging.HostImages;

/// <summary>Why a host image cannot be built from what this machine has: the message names what is missing or wrong and how to get it.</summary>
public sealed class HostImageException(string message) : Exception(message);

/// <summary>
/// What a host image is made of, found on this (Debian) machine: the kernel of the installed linux-image-cloud-amd64
/// (<c>/boot/vmlinuz-RELEASE</c>) and its modules, busybox (busybox-static), the self-contained <c>heddle</c> executable,
/// the util-linux programs the agent's process driver runs by absolute path (<see cref="AgentPrograms"/>: busybox's
/// applets of those names take other options), and the shared libraries all of them and the OpenSSL .NET opens at run
/// time need (glibc's loader included: a self-contained .NET executable is not a static one).
/// </summary>
public sealed record HostImageSources(string KernelRelease, string Kernel, string ModulesDirectory, string Busybox, string Heddle, IReadOnlyList<string> Programs,
    IReadOnlyList<string> Libraries)
{
    public const string DefaultBusybox = "/usr/bin/busybox";

    /// <summary>
    /// What the agent runs as root to start an instance (its HostPrograms, but /bin/sh, which is busybox's) and to make an
    /// instance's own disk (mkfs.ext4), kept at the same paths.
    /// </summary>
    public static readonly IReadOnlyList<string> AgentPrograms =
        ["/usr/bin/setsid", "/usr/bin/taskset", "/usr/bin/setpriv", "/usr/bin/unshare", "/usr/bin/nsenter", "/usr/bin/mount", "/usr/bin/umount", "/usr/sbin/mkfs.ext4"];

    /// <summary>The OpenSSL libraries .NET opens by name (dlopen) for TLS: no ELF dependency shows them.</summary>
    private static readonly string[] OpenedAtRunTime = ["libssl.so.3", "libcrypto.so.3"];

    private static readonly string[] LibraryFolders = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"];

    /// <summary>
    /// The sources, checked: <paramref name="release"/> (default: the newest <c>*-cloud-amd64</c> with both a kernel and
    /// modules), <paramref name="heddle"/> a .NET single-file executable, <paramref name="busybox"/> a static busybox.
    /// </summary>
    public static HostImageSources Find(string heddle, string? release = null, string busybox = DefaultBusybox)
    {
        release ??= NewestCloudKernel() ?? throw new HostImageException("no Debian cloud kernel here: /boot/vmlinuz-*-cloud-amd64 with its /lib/modules folder (apt-get install linux-image-cloud-amd64), or name one with --kernel-release");
        var kernel = $"/boot/vmlinuz-{release}";
        var modules = $"/lib/modules/{release}";
        if (!File.Exists(kernel) || !Directory.Exists(modules))
        {
            throw new HostImageException($"kernel release '{release}' is not installed here: {(File.Exists(kernel) ? string.Empty : $"{kernel} is missing ")}{(Directory.Exists(modules) ? string.Empty : $"{modules} is missing")}".TrimEnd());
        }

        foreach (var module in HostImageLayout.Modules)
        {
            if (!File.Exists(Path.Combine(modules, "kernel", module + ".ko")))
            {
                throw new HostImageException($"kernel {release} has no {module}.ko: a host image needs the virtio network and loop modules of a Debian cloud kernel");
            }
        }

        if (!File.Exists(busybox))
        {
            throw new HostImageException($"{busybox} does not exist (apt-get install busybox-static)");
        }

        CheckSingleFile(heddle);
        if (AgentPrograms.Where(p => !File.Exists(p)).ToList() is { Count: > 0 } missing)
        {
            throw new HostImageException($"{string.Join(", ", missing)} missing here: the agent runs them to start instances, and the image takes them from this machine (apt-get install util-linux mount e2fsprogs)");
        }

        var libraries = new SortedSet<string>(StringComparer.Ordinal);
        var openssl = OpenedAtRunTime.Select(name => LibraryFolders.Select(f => Path.Combine(f, name)).FirstOrDefault(File.Exists)
            ?? throw new HostImageException($"{name} is not in {string.Join(" or ", LibraryFolders)}: heddle opens it for TLS (apt-get install libssl3)")).ToList();
        foreach (var elf in (string[])[heddle, busybox, .. AgentPrograms, .. openssl])
        {
            libraries.UnionWith(Dependencies(elf));
        }

        libraries.UnionWith(openssl);
        return new HostImageSources(release, kernel, modules, busybox, Path.GetFullPath(heddle), AgentPrograms, [.. libraries]);
    }

    /// <summary>The newest release with a cloud kernel and its modules, or null.</summary>
    public static string? NewestCloudKernel() => Directory.Exists("/lib/modules")
        ? Directory.GetDirectories("/lib/modules").Select(Path.GetFileName).Where(r => r!.EndsWith("-cloud-amd64", StringComparison.Ordinal) && File.Exists($"/boot/vmlinuz-{r}"))
            .Order(StringComparer.Ordinal).LastOrDefault()
        : null;

    /// <summary>
    /// Refuses a file that is not a .NET single-file executable (an ELF holding a bundle): a framework-dependent heddle, or
    /// one whose assemblies sit beside it, would not run alone in an initramfs.
    /// </summary>
    public static void CheckSingleFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new HostImageException($"{path} does not exist: name the self-contained heddle executable (scripts/build.sh makes artifacts/heddle/heddle)");
        }

        using var file = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        if (file.ReadAtLeast(magic, 4, throwOnEndOfStream: false) < 4 || !magic.SequenceEqual((ReadOnlySpan<byte>)[0x7f, (byte)'E', (byte)'L', (byte)'F']))
        {
            throw new HostImageException($"{path} is not an ELF executable: name the self-contained heddle executable (scripts/build.sh makes artifacts/heddle/heddle)");
        }

        if (!HoldsBundle(file))
        {
            throw new HostImageException($"{path} is not a .NET single-file executable (no bundle inside): a host image needs the self-contained heddle that scripts/build.sh makes (artifacts/heddle/heddle)");
        }
    }

    /// <summary>Whether the file holds the .NET bundle signature (the SHA-256 of ".net core bundle", which the single-file host carries).</summary>
    private static bool HoldsBundle(FileStream file)
    {
        ReadOnlySpan<byte> signature =
        [
            0x8b, 0x12, 0x02, 0xb9, 0x6a, 0x61, 0x20, 0x38, 0x72, 0x7b, 0x93, 0x02, 0x14, 0xd7, 0xa0, 0x32,
            0x13, 0xf5, 0xb9, 0xe6, 0xef, 0xae, 0x33, 0x18, 0xee, 0x3b, 0x2d, 0xce, 0x24, 0xb3, 0x6a, 0xae,
        ];
        file.Position = 0;
        var buffer = new byte[1 << 20];
        var kept = 0;
        int read;
        while ((read = file.Read(buffer, kept, buffer.Length - kept)) > 0)
        {
            var length = kept + read;
            if (buffer.AsSpan(0, length).IndexOf(signature) >= 0)
            {
                return true;
            }

            kept = Math.Min(signature.Length - 1, length);
            buffer.AsSpan(length - kept, kept).CopyTo(buffer);
        }

        return false;
    }

    /// <summary>The shared libraries an ELF file loads (ldd), the dynamic loader included; none for a static one.</summary>
    private static IEnumerable<string> Dependencies(string elf)
    {
        var start = new ProcessStartInfo("ldd") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(elf);
        using var ldd = Process.Start(start) ?? throw new HostImageException("ldd could not be started (apt-get install libc-bin)");
        var output = ldd.StandardOutput.ReadToEndAsync();
        var error = ldd.StandardError.ReadToEnd();
        ldd.WaitForExit();
        var lines = output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (ldd.ExitCode != 0)
        {
            return (output.Result + error).Contains("not a dynamic executable", StringComparison.Ordinal)
                ? []
                : throw new HostImageException($"ldd {elf} failed (exit {ldd.ExitCode}): {error.Trim()}");
        }

        var missing = lines.Where(l => l.EndsWith("not found", StringComparison.Ordinal)).ToList();
        if (missing.Count > 0)
        {
            throw new HostImageException($"{elf} needs libraries this machine does not have: {string.Join("; ", missing)}");
        }

        // "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)"
        return lines.Select(l => l.Contains("=>", StringComparison.Ordinal) ? l[(l.IndexOf("=>", StringComparison.Ordinal) + 2)..].Trim() : l)
            .Select(l => l.Split(' ')[0]).Where(p => p.StartsWith('/')).ToList();
    }
}
