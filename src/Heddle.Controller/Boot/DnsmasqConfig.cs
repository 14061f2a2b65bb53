using System.Text;

namespace Heddle.Controller.Boot;

/// <summary>What dnsmasq is told to do on the provisioning interface. Pure.</summary>
public sealed record DnsmasqConfig(string Interface, DhcpRange Range, Uri Script, string TftpRoot, string LeaseFile, bool RouterAdvertisements)
{
    /// <summary>
    /// The configuration file: DHCP only (no DNS); iPXE (which says so in option 175) is handed the HTTP script URL with its
    /// MAC, anything else a TFTP iPXE build that then comes back as iPXE: undionly.kpxe for BIOS, snponly.efi for x86-64
    /// UEFI (Debian's ipxe package).
    /// </summary>
    public string Render()
    {
        var text = new StringBuilder();
        void Line(string line) => text.Append(line).Append('\n');
        Line("# Written by heddle boot; rewritten at each start.");
        Line("port=0"); // no DNS: the cluster's DNS is heddle's; dnsmasq only leases and serves TFTP
        Line("no-resolv");
        Line("no-hosts");
        Line("pid-file=");
        Line($"interface={Interface}");
        Line("bind-interfaces");
        Line("except-interface=lo");
        Line($"dhcp-range={Range.Start},{Range.End},{Range.Mask},1h");
        Line($"dhcp-leasefile={LeaseFile}");
        Line("dhcp-authoritative");
        if (RouterAdvertisements)
        {
            // iPXE waits 16 s for IPv6 autoconfiguration on a network that sends no router advertisements.
            Line($"dhcp-range=::,constructor:{Interface},ra-only");
            Line("enable-ra");
        }

        Line("dhcp-match=set:ipxe,175");
        Line("dhcp-option=encap:175,176,1b"); // iPXE: do not wait for a ProxyDHCP answer
        Line("dhcp-match=set:efi64,option:client-arch,7");
        Line("dhcp-match=set:efi64,option:client-arch,9");
        // iPXE expands ${netX/mac} itself: the card that booted names itself in the URL it fetches.
        Line($"dhcp-boot=tag:ipxe,{Script}?mac=${{netX/mac}}");
        Line("dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi");
        Line("dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe");
        Line("enable-tftp");
        Line($"tftp-root={TftpRoot}");
        Line("log-dhcp");
        return text.ToString();
    }
}
