using System.IO.Compression;
using System.Text;

namespace Heddle.Testing.Boot;

/// <summary>
/// A tiny initramfs for network-boot tests: busybox-static, the virtio network modules of the installed Debian cloud
/// kernel (built as modules there), and an init that takes a DHCP lease and POSTs what it was given (its kernel command
/// line and its address) to the URL in <c>heddle.report=</c>, then powers the machine off. Written as a gzip'd cpio
/// (newc) archive here, so no cpio tool is needed.
/// </summary>
public static class TestInitramfs
{
    public const string Busybox = "/usr/bin/busybox";

    /// <summary>Load order: each after what it depends on (modinfo -F depends).</summary>
    private static readonly string[] Modules =
    [
        "drivers/virtio/virtio_ring", "drivers/virtio/virtio", "drivers/virtio/virtio_pci_legacy_dev", "drivers/virtio/virtio_pci_modern_dev",
        "drivers/virtio/virtio_pci", "net/core/failover", "drivers/net/net_failover", "drivers/net/virtio_net",
    ];

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
    public static string? KernelRelease() => Directory.Exists("/lib/modules")
        ? Directory.GetDirectories("/lib/modules").Select(Path.GetFileName).Where(r => r!.EndsWith("-cloud-amd64", StringComparison.Ordinal) && File.Exists($"/boot/vmlinuz-{r}"))
            .Order(StringComparer.Ordinal).LastOrDefault()
        : null;

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

        var names = Modules.Select(m => Path.GetFileName(m)).ToList();
        cpio.File("init", Encoding.ASCII.GetBytes(Init.Replace("MODULES", string.Join(' ', names), StringComparison.Ordinal)), 0b111_101_101);
        cpio.File("lease.sh", Encoding.ASCII.GetBytes(Lease), 0b111_101_101);
        cpio.File("bin/busybox", File.ReadAllBytes(Busybox), 0b111_101_101);
        foreach (var module in Modules)
        {
            cpio.File($"lib/modules/{Path.GetFileName(module)}.ko", File.ReadAllBytes($"/lib/modules/{release}/kernel/{module}.ko"), 0b110_100_100);
        }

        cpio.Trailer();
    }

    /// <summary>The "new ASCII" cpio format the kernel unpacks: a 110-byte hex header, the name, the data, each padded to 4 bytes.</summary>
    private sealed class CpioWriter(Stream output)
    {
        private int _inode = 1;

        public void Directory(string name) => Entry(name, [], 0x4000 | 0b111_101_101, 2);

        public void File(string name, byte[] data, int permissions) => Entry(name, data, 0x8000 | permissions, 1);

        public void Trailer() => Entry("TRAILER!!!", [], 0, 1);

        private void Entry(string name, byte[] data, int mode, int links)
        {
            var nameBytes = Encoding.ASCII.GetBytes(name + "\0");
            var fields = new[] { _inode++, mode, 0, 0, links, 0, data.Length, 0, 0, 0, 0, nameBytes.Length, 0 };
            var header = "070701" + string.Concat(fields.Select(f => f.ToString("X8", System.Globalization.CultureInfo.InvariantCulture)));
            Write(Encoding.ASCII.GetBytes(header));
            Write(nameBytes);
            Pad(110 + nameBytes.Length);
            Write(data);
            Pad(data.Length);
        }

        private void Write(byte[] bytes) => output.Write(bytes);

        private void Pad(int length)
        {
            for (var i = length; i % 4 != 0; i++)
            {
                output.WriteByte(0);
            }
        }
    }
}
