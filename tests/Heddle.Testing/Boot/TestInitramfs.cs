using System.IO.Compression;
using System.Text;
using Heddle.Packaging.HostImages;

namespace Heddle.Testing.Boot;

/// <summary>
/// A tiny initramfs for network-boot tests: busybox-static, the virtio network modules of the installed Debian cloud
/// kernel (a host image's list), and an init that takes a DHCP lease and POSTs what it was given (its kernel command
/// line and its address) to the URL in <c>heddle.report=</c>, then powers the machine off. Written as a gzip'd cpio
/// (newc) archive by the host image's <see cref="CpioWriter"/>, so no cpio tool is needed.
/// </summary>
public static class TestInitramfs
{
    public const string Busybox = "/usr/bin/busybox";

    private const string Init = """
        #!/bin/busybox sh
        /bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /usr/sbin /sbin
        /bin/busybox --install -s
        mount -t proc proc /proc
        mount -t sysfs sys /sys
        mount -t devtmpfs dev /dev
        echo "init: up at $(cut -d' ' -f1 /proc/uptime) s"
        for m in MODULES; do insmod /lib/modules/$m.ko || echo "init: insmod $m failed"; done
        ip link set eth0 up
        udhcpc -i eth0 -s /lease.sh -q -n -t 30 -T 1
        report=$(sed -n 's/.*heddle\.report=\([^ ]*\).*/\1/p' /proc/cmdline)
        address=$(ip -4 -o addr show eth0 | awk '{print $4}')
        wget -q -O /dev/null --post-data "address=$address cmdline=$(cat /proc/cmdline)" "$report" || echo "init: the report to $report failed"
        echo "init: reported at $(cut -d' ' -f1 /proc/uptime) s"
        poweroff -f

        """;

    private const string Lease = """
        #!/bin/sh
        [ "$1" = bound ] || [ "$1" = renew ] || exit 0
        ip addr add "$ip/${mask:-24}" dev "$interface"

        """;

    /// <summary>The running kernel's release whose cloud image is installed, or null (linux-image-cloud-amd64).</summary>
    public static string? KernelRelease() => HostImageSources.NewestCloudKernel();

    /// <summary>Writes the initramfs for kernel <paramref name="release"/> to <paramref name="path"/>.</summary>
    public static void Write(string path, string release)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        var cpio = new CpioWriter(gzip);
        foreach (var dir in new[] { "bin", "lib", "lib/modules", "proc", "sys", "dev", "tmp" })
        {
            cpio.Directory(dir);
        }

        var names = HostImageLayout.Modules.Select(m => Path.GetFileName(m)).ToList();
        cpio.File("init", Encoding.ASCII.GetBytes(Init.Replace("MODULES", string.Join(' ', names), StringComparison.Ordinal)), 0b111_101_101);
        cpio.File("lease.sh", Encoding.ASCII.GetBytes(Lease), 0b111_101_101);
        cpio.File("bin/busybox", File.ReadAllBytes(Busybox), 0b111_101_101);
        foreach (var module in HostImageLayout.Modules)
        {
            cpio.File($"lib/modules/{Path.GetFileName(module)}.ko", File.ReadAllBytes($"/lib/modules/{release}/kernel/{module}.ko"), 0b110_100_100);
        }

        cpio.Trailer();
    }
}
