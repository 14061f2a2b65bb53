using System.Net;
using Heddle.Contracts.Api;
using Heddle.Controller.Boot;

namespace Heddle.Controller.Tests.Machines;

/// <summary>The boot service's pure parts: the iPXE script for each decision, the DHCP range, dnsmasq's configuration.</summary>
public sealed class BootScriptTests
{
    private static readonly Uri Kernel = new("http://198.18.7.11:4000/boot/kernel");
    private static readonly Uri Initrd = new("http://198.18.7.11:4000/boot/initrd");

    [Fact]
    public void For_AnInstall_BootsTheKernelWithTheControllersNodeAndJoinString()
    {
        var decision = new BootDecision(BootAction.Install, "52:54:00:12:34:56", "m1", "rack-1", "hjoin.abc.def", ["https://198.18.7.10:7001/", "https://198.18.7.12:7001/"], "machine m1 gets the host image");

        var script = IpxeScripts.For(decision, Kernel, Initrd, "console=ttyS0");

        Assert.Equal("""
            #!ipxe
            echo heddle: machine m1 gets the host image
            kernel http://198.18.7.11:4000/boot/kernel console=ttyS0 heddle.controller=https://198.18.7.10:7001/,https://198.18.7.12:7001/ heddle.node=m1 heddle.fault-domain=rack-1 heddle.join=hjoin.abc.def
            initrd http://198.18.7.11:4000/boot/initrd
            boot

            """.ReplaceLineEndings("\n"), script);
    }

    [Theory]
    [InlineData(BootAction.NoImage)]
    [InlineData(BootAction.BootLocal)]
    [InlineData(BootAction.TryLater)]
    public void For_AnythingButAnInstall_SaysWhyAndExits_WithNoImageAndNoSecret(BootAction action)
    {
        var script = IpxeScripts.For(new BootDecision(action, "52:54:00:12:34:56", null, null, null, [], "no image for ${you}\nkernel evil"), Kernel, Initrd, null);

        Assert.Equal("#!ipxe\necho heddle: no image for ?{you}?kernel evil\nexit 1\n", script);
    }

    [Fact]
    public void AppendError_ALineBreakOrASetting_IsRefused()
    {
        Assert.Null(IpxeScripts.AppendError("console=ttyS0 quiet"));
        Assert.NotNull(IpxeScripts.AppendError("a\nkernel x"));
        Assert.NotNull(IpxeScripts.AppendError("${net0/ip}"));
    }

    [Theory]
    [InlineData("198.18.7.11", 24, "198.18.7.128", "198.18.7.254", "255.255.255.0")]
    [InlineData("198.18.7.200", 24, "198.18.7.1", "198.18.7.127", "255.255.255.0")]
    [InlineData("10.1.0.1", 16, "10.1.128.0", "10.1.255.254", "255.255.0.0")]
    public void For_TheHalfOfTheSubnetWithoutTheServer(string server, int prefix, string start, string end, string mask)
    {
        var range = DhcpRange.For(IPAddress.Parse(server), prefix)!;

        Assert.Equal((start, end, mask), (range.Start.ToString(), range.End.ToString(), range.Mask.ToString()));
    }

    [Fact]
    public void For_ASubnetTooSmall_IsNull() => Assert.Null(DhcpRange.For(IPAddress.Parse("10.0.0.1"), 30));

    [Fact]
    public void Render_ServesOnlyTheInterface_NoDns_IpxeGetsTheScriptWithItsMac()
    {
        var config = new DnsmasqConfig("eth0", DhcpRange.For(IPAddress.Parse("198.18.7.11"), 24)!, new Uri("http://198.18.7.11:4000/boot/ipxe"), "/s/tftp", "/s/leases", RouterAdvertisements: true)
            .Render().Split('\n');

        Assert.Contains("port=0", config);
        Assert.Contains("interface=eth0", config);
        Assert.Contains("bind-interfaces", config);
        Assert.Contains("dhcp-range=198.18.7.128,198.18.7.254,255.255.255.0,1h", config);
        Assert.Contains("dhcp-range=::,constructor:eth0,ra-only", config);
        Assert.Contains("dhcp-boot=tag:ipxe,http://198.18.7.11:4000/boot/ipxe?mac=${netX/mac}", config);
        Assert.Contains("dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe", config);
    }
}
