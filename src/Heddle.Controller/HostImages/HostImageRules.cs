using System.Text.RegularExpressions;
using Heddle.Contracts.Api;

namespace Heddle.Controller.HostImages;

/// <summary>What a host image must be: a name that can stand in a URL and on a kernel command line, a Linux kernel and an initramfs. Pure.</summary>
public static partial class HostImageRules
{
    /// <summary>A kernel larger than this is not one (Debian's cloud kernel is about 8 MB).</summary>
    public const long MaxKernelBytes = 128L << 20;

    /// <summary>An initramfs is held in a booting machine's memory: 2 GiB is far past what one should be.</summary>
    public const long MaxInitrdBytes = 2L << 30;

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex NamePattern();

    /// <summary>Why <paramref name="name"/> cannot name a host image, or null.</summary>
    public static string? NameError(string? name) => name is not null && NamePattern().IsMatch(name)
        ? null
        : $"'{Printable.Of(name ?? string.Empty)}' is not a host image name: use 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit (for example bookworm-1)";

    public static long MaxBytes(HostImagePart part) => part == HostImagePart.Kernel ? MaxKernelBytes : MaxInitrdBytes;

    /// <summary>
    /// Why the first bytes of a part are not that part, or null. A kernel is an x86 bzImage (the boot protocol's "HdrS" at
    /// 0x202, which iPXE checks too); an initramfs is a newc cpio, plain or compressed with gzip, zstd or xz.
    /// </summary>
    public static string? ContentError(HostImagePart part, ReadOnlySpan<byte> head) => part switch
    {
        HostImagePart.Kernel when head.Length < 0x206 || !head.Slice(0x202, 4).SequenceEqual("HdrS"u8) =>
            "the kernel is not a Linux x86 kernel image (bzImage, as /boot/vmlinuz-* is): no \"HdrS\" header at 0x202",
        HostImagePart.Initrd when !(head.StartsWith("070701"u8) || head.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x8b]) || head.StartsWith((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd])
            || head.StartsWith((ReadOnlySpan<byte>)[0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z'])) =>
            "the initramfs is not a newc cpio archive, plain or compressed with gzip, zstd or xz",
        _ => null,
    };
}
