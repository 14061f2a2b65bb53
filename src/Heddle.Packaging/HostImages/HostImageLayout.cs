namespace Heddle.Packaging.HostImages;

/// <summary>
/// What a host image's initramfs holds besides its binaries: the kernel modules loaded at boot, and the scripts that make
/// a machine a node. busybox is <c>/init</c> (its init applet: it reaps orphans and respawns the agent);
/// <c>/etc/init.d/rcS</c> mounts what the agent needs (proc, sys, devtmpfs, cgroup2, tmpfs for /tmp, /run and the agent's
/// state) and takes a DHCP lease (udhcpc, kept running to renew it); <c>/etc/heddle/agent.sh</c> (respawned) starts
/// <c>heddle agent</c> with the controller URLs, node name, fault domain and join string of the kernel command line
/// (<c>heddle.controller=</c>, <c>heddle.node=</c>, <c>heddle.fault-domain=</c>, <c>heddle.join=</c>, as the boot
/// service's iPXE script writes them), and the image's name from <c>/etc/heddle/host-image</c>.
/// </summary>
public static class HostImageLayout
{
    /// <summary>The agent's state: a tmpfs, so a host starts clean at every boot (its node certificate included).</summary>
    public const string StateDirectory = "/var/lib/heddle";

    public const string ImageNameFile = "etc/heddle/host-image";

    /// <summary>
    /// The Debian cloud kernel has virtio and loop as modules (under <c>kernel/</c> of its modules folder), loaded in this
    /// order: each after what it depends on (<c>modinfo -F depends</c>).
    /// </summary>
    public static readonly IReadOnlyList<string> Modules =
    [
        "drivers/virtio/virtio_ring", "drivers/virtio/virtio", "drivers/virtio/virtio_pci_legacy_dev", "drivers/virtio/virtio_pci_modern_dev",
        "drivers/virtio/virtio_pci", "net/core/failover", "drivers/net/net_failover", "drivers/net/virtio_net",

        // Each instance's own disk is a loop-mounted ext4 image (ext4 is built into the cloud kernel; loop is a module).
        "drivers/block/loop",
    ];

    public const string Inittab = """
        ::sysinit:/etc/init.d/rcS
        ::respawn:/etc/heddle/agent.sh
        ::ctrlaltdel:/sbin/reboot -f
        ::shutdown:/bin/umount -a -r

        """;

    /// <summary>The first script init runs; MODULES is replaced by the module file names in load order.</summary>
    public const string Rcs = """
        #!/bin/sh
        /bin/busybox --install -s
        mkdir -p /proc /sys /dev /tmp /run /root /var/lib/heddle
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        mkdir -p /dev/pts /dev/shm
        mount -t devpts devpts /dev/pts
        mount -t tmpfs -o mode=1777 tmpfs /dev/shm
        mount -t cgroup2 cgroup2 /sys/fs/cgroup
        mount -t tmpfs -o mode=1777 tmpfs /tmp
        mount -t tmpfs -o mode=0755 tmpfs /run
        mount -t tmpfs -o mode=0711 tmpfs /var/lib/heddle
        echo "heddle-init: $(cat /etc/heddle/host-image) up at $(cut -d' ' -f1 /proc/uptime) s"
        for m in MODULES; do insmod /lib/modules/$m.ko || echo "heddle-init: insmod $m failed"; done
        ip link set lo up
        for word in $(cat /proc/cmdline); do
          case "$word" in heddle.node=*) hostname "${word#*=}" ;; esac
        done
        card=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
        ip link set "$card" up
        # udhcpc stays in the background once it has a lease, to renew it.
        until udhcpc -i "$card" -s /usr/share/udhcpc/default.script -t 10 -T 1 -A 1 -n; do
          echo "heddle-init: no DHCP lease on $card yet; asking again"
        done
        echo "heddle-init: $(ip -4 -o addr show "$card" | awk '{print $4}') on $card at $(cut -d' ' -f1 /proc/uptime) s"

        """;

    /// <summary>Respawned by init whenever it ends: the agent, with what the kernel command line says.</summary>
    public const string AgentScript = """
        #!/bin/sh
        for word in $(cat /proc/cmdline); do
          case "$word" in
            heddle.controller=*) controller="${word#*=}" ;;
            heddle.node=*) node="${word#*=}" ;;
            heddle.fault-domain=*) fault_domain="${word#*=}" ;;
            heddle.join=*) join="${word#*=}" ;;
          esac
        done
        if [ -z "$controller" ] || [ -z "$node" ] || [ -z "$fault_domain" ]; then
          echo "heddle-init: the kernel command line lacks heddle.controller=, heddle.node= or heddle.fault-domain= (the boot service's iPXE script gives them); no agent"
          exec sleep 3600
        fi
        # A respawn after the agent ended: not in a tight loop.
        [ -e /run/heddle-agent-started ] && sleep 2
        touch /run/heddle-agent-started
        echo "heddle-init: starting the agent at $(cut -d' ' -f1 /proc/uptime) s"
        export HEDDLE_JOIN="$join" HOME=/root LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
        # The single-file executable unpacks its native libraries (SQLite's) here at start.
        export DOTNET_BUNDLE_EXTRACT_BASE_DIR=/var/lib/heddle/bundle
        exec /usr/bin/heddle agent --controller "$controller" --name "$node" --fault-domain "$fault_domain" \
          --state /var/lib/heddle/agent --host-image "$(cat /etc/heddle/host-image)"

        """;

    /// <summary>udhcpc's lease script: the address, the default route and the name servers of the lease.</summary>
    public const string LeaseScript = """
        #!/bin/sh
        case "$1" in
          deconfig)
            ip -4 addr flush dev "$interface"
            ip link set "$interface" up
            ;;
          bound)
            ip -4 addr flush dev "$interface"
            ip addr add "$ip/${mask:-24}" dev "$interface"
            [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
            [ -n "$dns" ] && for d in $dns; do echo "nameserver $d"; done > /etc/resolv.conf
            ;;
          renew)
            ip addr add "$ip/${mask:-24}" dev "$interface" 2>/dev/null
            ;;
        esac
        exit 0

        """;
}
