using System.Diagnostics;
using System.Text;
using Heddle.Testing.Hosts;

namespace Heddle.Testing.Boot;

/// <summary>
/// A QEMU virtual machine (TCG: this machine's KVM does not run ordinary kernels) that network-boots from a virtio card
/// with the given MAC, through QEMU's own iPXE ROM (Debian's ipxe-qemu), on a tap device it makes on a test bed's bridge.
/// Its serial console is kept (each line with the seconds since power-on). Disposing kills QEMU and removes the tap.
/// </summary>
public sealed class QemuMachine : IAsyncDisposable
{
    public const string Program = "/usr/bin/qemu-system-x86_64";
    public const string IpxeRom = "/usr/lib/ipxe/qemu/efi-virtio.rom";

    private readonly Process _process;
    private readonly StringBuilder _console = new();
    private readonly Task _reading;
    private int _disposed;

    private QemuMachine(string tap, Process process)
    {
        Tap = tap;
        _process = process;
        _reading = Task.WhenAll(ReadAsync(process.StandardOutput), ReadAsync(process.StandardError));
    }

    /// <summary>Whether QEMU and its iPXE ROM are installed (qemu-system-x86, ipxe-qemu).</summary>
    public static bool Supported => File.Exists(Program) && File.Exists(IpxeRom) && File.Exists("/dev/net/tun");

    public string Tap { get; }

    /// <summary>Started when QEMU was: power-on.</summary>
    public Stopwatch SincePowerOn { get; } = new();

    public bool HasExited => _process.HasExited;

    public string Console
    {
        get
        {
            lock (_console)
            {
                return _console.ToString();
            }
        }
    }

    /// <summary>
    /// Powers on a machine with one virtio card (<paramref name="mac"/>) on <paramref name="bridge"/>, booting from the network.
    /// A guest's reboot ends QEMU unless <paramref name="rebootable"/>: then it resets the machine, which network-boots again.
    /// </summary>
    public static async Task<QemuMachine> StartAsync(string bridge, string tap, string mac, int memoryMiB = 512, int cpus = 1, bool rebootable = false)
    {
        await Ip.RunAsync("tuntap", "add", "dev", tap, "mode", "tap");
        try
        {
            await Ip.RunAsync("link", "set", tap, "master", bridge, "up");
            var start = new ProcessStartInfo(Program) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
            foreach (var arg in (string[])["-accel", "tcg", "-m", memoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture), "-smp", cpus.ToString(System.Globalization.CultureInfo.InvariantCulture), "-nographic", "-boot", "n",
                "-netdev", $"tap,id=n0,ifname={tap},script=no,downscript=no", "-device", $"virtio-net-pci,netdev=n0,mac={mac}"])
            {
                start.ArgumentList.Add(arg);
            }

            if (!rebootable)
            {
                start.ArgumentList.Add("-no-reboot");
            }

            var machine = new QemuMachine(tap, Process.Start(start)!);
            machine.SincePowerOn.Start();
            return machine;
        }
        catch
        {
            await Ip.TryRunAsync("link", "del", tap);
            throw;
        }
    }

    private async Task ReadAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (_console)
            {
                _console.Append(FormattableString.Invariant($"[{SincePowerOn.Elapsed.TotalSeconds,7:0.000}] ")).AppendLine(line);
            }
        }
    }

    /// <summary>Cuts the machine's power and removes its tap; a second call does nothing.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        if (!_process.HasExited)
        {
            _process.Kill();
        }

        await _process.WaitForExitAsync();
        await _reading;
        _process.Dispose();
        await Ip.TryRunAsync("link", "del", Tap);
    }
}
