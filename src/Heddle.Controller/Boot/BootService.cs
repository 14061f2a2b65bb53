using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Heddle.Contracts.Api;

namespace Heddle.Controller.Boot;

/// <summary>What `heddle boot` is given.</summary>
public sealed record BootServiceOptions
{
    /// <summary>The provisioning network's interface: DHCP, TFTP and the HTTP scripts are served there only.</summary>
    public required string Interface { get; init; }

    /// <summary>The kernel and initramfs for machines set to no host image (both or neither; without them such a machine gets none).</summary>
    public string? Kernel { get; init; }

    public string? Initrd { get; init; }

    public required string StateDirectory { get; init; }

    /// <summary>The HTTP port on the interface's address; 0 lets the OS choose (dnsmasq is told which).</summary>
    public int HttpPort { get; init; }

    /// <summary>Extra kernel arguments for every install (console=ttyS0, ...).</summary>
    public string? Append { get; init; }

    /// <summary>"START,END" to lease instead of the half of the subnet the interface's address is not in.</summary>
    public string? DhcpRange { get; init; }

    public string Dnsmasq { get; init; } = "/usr/sbin/dnsmasq";

    /// <summary>Where Debian's ipxe package puts undionly.kpxe and snponly.efi (served over TFTP to cards that are not iPXE yet).</summary>
    public string IpxeDirectory { get; init; } = "/usr/lib/ipxe";
}

/// <summary>
/// `heddle boot`: the HTTP scripts on the interface's IPv4 address, then dnsmasq (DHCP, TFTP, and router advertisements
/// when the interface has a global IPv6 address) pointing booting cards at them, supervised until cancelled.
/// </summary>
public static class BootService
{
    /// <param name="fetchPart">Writes the host image part of that SHA-256, from the controller, to the stream.</param>
    public static async Task RunAsync(BootServiceOptions options, Func<string, CancellationToken, Task<BootDecision>> decide, Func<string, Stream, CancellationToken, Task> fetchPart,
        TextWriter log, CancellationToken cancellationToken)
    {
        var (address, prefix, ipv6) = InterfaceAddresses(options.Interface);
        var range = Range(options.DhcpRange, address, prefix);
        if ((options.Kernel is null) != (options.Initrd is null))
        {
            throw new ArgumentException("--kernel and --initrd go together: the kernel and initramfs for machines set to no host image");
        }

        foreach (var file in new[] { options.Kernel, options.Initrd }.OfType<string>())
        {
            if (!File.Exists(file))
            {
                throw new ArgumentException($"{file} does not exist: --kernel and --initrd name the kernel and initramfs for machines set to no host image");
            }
        }

        if (IpxeScripts.AppendError(options.Append) is { } appendError)
        {
            throw new ArgumentException(appendError);
        }

        Directory.CreateDirectory(options.StateDirectory);
        var tftp = TftpRoot(options);
        var images = new BootImages(options.Kernel is { } kernel ? Path.GetFullPath(kernel) : null, options.Initrd is { } initrd ? Path.GetFullPath(initrd) : null,
            Path.Combine(Path.GetFullPath(options.StateDirectory), "images"), fetchPart);
        await using var server = await BootServer.StartAsync(address, options.HttpPort, images, options.Append, decide, log, cancellationToken);
        var config = new DnsmasqConfig(options.Interface, range, server.Script, tftp, Path.Combine(Path.GetFullPath(options.StateDirectory), "dnsmasq.leases"), ipv6);
        var configFile = Path.Combine(options.StateDirectory, "dnsmasq.conf");
        await File.WriteAllTextAsync(configFile, config.Render(), cancellationToken);
        await using var dnsmasq = await DnsmasqSupervisor.StartAsync(options.Dnsmasq, Path.GetFullPath(configFile), log);
        log.WriteLine($"heddle boot: scripts at {server.Script}?mac=..., DHCP {range.Start}-{range.End} on {options.Interface}{(ipv6 ? " (with IPv6 router advertisements)" : string.Empty)}, TFTP from {tftp}");
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static (IPAddress Address, int Prefix, bool Ipv6) InterfaceAddresses(string name)
    {
        var card = NetworkInterface.GetAllNetworkInterfaces().FirstOrDefault(n => n.Name == name)
            ?? throw new ArgumentException($"no interface {name} here (ip link shows them)");
        var unicast = card.GetIPProperties().UnicastAddresses;
        var v4 = unicast.FirstOrDefault(a => a.Address.AddressFamily == AddressFamily.InterNetwork)
            ?? throw new ArgumentException($"interface {name} has no IPv4 address: give it the boot host's address on the provisioning network");
        var v6 = unicast.Any(a => a.Address.AddressFamily == AddressFamily.InterNetworkV6 && !a.Address.IsIPv6LinkLocal);
        return (v4.Address, v4.PrefixLength, v6);
    }

    private static DhcpRange Range(string? text, IPAddress address, int prefix)
    {
        var mask = Heddle.Controller.Boot.DhcpRange.For(address, prefix)?.Mask ?? throw new ArgumentException($"{address}/{prefix}: the provisioning subnet must be /8 to /29");
        if (text is null)
        {
            return Heddle.Controller.Boot.DhcpRange.For(address, prefix)!;
        }

        var parts = text.Split(',');
        return parts.Length == 2 && IPAddress.TryParse(parts[0], out var start) && IPAddress.TryParse(parts[1], out var end)
            ? new DhcpRange(start, end, mask)
            : throw new ArgumentException($"--dhcp-range '{text}' is not START,END (two IPv4 addresses)");
    }

    /// <summary>The TFTP folder, holding Debian's iPXE builds for cards whose firmware is not iPXE (readable by dnsmasq's own user).</summary>
    private static string TftpRoot(BootServiceOptions options)
    {
        var tftp = Path.GetFullPath(Path.Combine(options.StateDirectory, "tftp"));
        Directory.CreateDirectory(tftp);
        File.SetUnixFileMode(tftp, (UnixFileMode)0b111_101_101);
        foreach (var name in new[] { "undionly.kpxe", "snponly.efi" })
        {
            var from = Path.Combine(options.IpxeDirectory, name);
            if (File.Exists(from))
            {
                File.Copy(from, Path.Combine(tftp, name), overwrite: true);
                File.SetUnixFileMode(Path.Combine(tftp, name), (UnixFileMode)0b110_100_100);
            }
        }

        return tftp;
    }
}
