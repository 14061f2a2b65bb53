using System.CommandLine;
using Heddle.Cli.Client;
using Heddle.Controller.Boot;

namespace Heddle.Cli.Commands;

/// <summary>
/// `heddle boot --interface IF`: the provisioning service on a host of the provisioning network. It runs dnsmasq (DHCP and
/// TFTP on that interface only) and serves each booting card the iPXE script the controller decides for its MAC, and the
/// kernel and initramfs of the host image the machine is set to (fetched from the controller once), or its own.
/// </summary>
internal static class BootCommand
{
    public static Command Create(CliConsole console)
    {
        var networkInterface = new Option<string>("--interface") { Description = "The provisioning network's interface (DHCP, TFTP and HTTP are served there only)", Required = true };
        var controller = new Option<string?>("--controller") { Description = "The controller's API URL, or several comma-separated (default: from $HEDDLE_HOME/config.json)" };
        var tokenFile = new Option<string?>("--token-file") { Description = "A file holding a boot token ('heddle token create --boot'): it asks for boot decisions and nothing else" };
        var caFile = new Option<string?>("--ca-file") { Description = "The cluster CA certificate, PEM (default: from $HEDDLE_HOME/config.json; the controller writes <state>/ca.crt)" };
        var kernel = new Option<string?>("--kernel") { Description = "The kernel for machines set to no host image, e.g. /boot/vmlinuz-6.1.0-28-cloud-amd64 (machines set to one get its kernel from the controller)" };
        var initrd = new Option<string?>("--initrd") { Description = "The initramfs for machines set to no host image (with --kernel)" };
        var state = new Option<string>("--state") { Description = "Where dnsmasq's configuration, leases and TFTP folder are kept", Required = true };
        var port = new Option<int>("--http-port") { Description = "The HTTP port on the interface's address; 0 lets the OS choose (default 0: dnsmasq is told which)" };
        var append = new Option<string?>("--append") { Description = "Extra kernel arguments for every install, e.g. console=ttyS0" };
        var range = new Option<string?>("--dhcp-range") { Description = "START,END to lease (default: the half of the interface's subnet its own address is not in)" };
        var dnsmasq = new Option<string>("--dnsmasq") { Description = "The dnsmasq executable (Debian: dnsmasq-base)", DefaultValueFactory = _ => "/usr/sbin/dnsmasq" };
        var command = new Command("boot", "Serve network boot on a provisioning network: DHCP and TFTP (dnsmasq) and iPXE scripts for registered machines")
        {
            networkInterface, controller, tokenFile, caFile, kernel, initrd, state, port, append, range, dnsmasq,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ControllerFollower.Connect(parse.GetValue(controller), parse.GetValue(tokenFile), parse.GetValue(caFile));
            var options = new BootServiceOptions
            {
                Interface = parse.GetValue(networkInterface)!, Kernel = parse.GetValue(kernel), Initrd = parse.GetValue(initrd), StateDirectory = parse.GetValue(state)!,
                HttpPort = parse.GetValue(port), Append = parse.GetValue(append), DhcpRange = parse.GetValue(range), Dnsmasq = parse.GetValue(dnsmasq)!,
            };
            try
            {
                await BootService.RunAsync(options, api.DecideBootAsync, api.DownloadBootImagePartAsync, console.Out, ct);
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
