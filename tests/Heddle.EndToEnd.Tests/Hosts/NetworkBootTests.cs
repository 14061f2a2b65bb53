using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Heddle.Testing;
using Heddle.Testing.Boot;
using Heddle.Testing.Hosts;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests.Hosts;

/// <summary>
/// Network boot on a provisioning bridge: a controller (host ctl) with one registered machine, `heddle boot` (host boot:
/// dnsmasq and the iPXE scripts), and QEMU machines on taps on the bed's bridge booting through QEMU's iPXE ROM. The
/// registered MAC gets its script and boots the Debian cloud kernel with a test initramfs whose init reports its lease
/// and its kernel command line (with the machine's join string); an unknown MAC gets no image, and the controller
/// records one event. The join string, used by an agent on a bed host standing in for the machine (whose image runs no
/// agent yet), enrols node m1 in the machine's fault domain. Power-on → report is printed.
/// </summary>
[Collection(BedCollection.Name)]
[Trait("Category", BedCollection.Category)]
public sealed partial class NetworkBootTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(40);

    [Fact]
    public async Task AKnownMac_BootsWithAJoinStringThatEnrolsItsNameInItsFaultDomain_AndAnUnknownMac_GetsNoImageAndAnEvent()
    {
        var release = TestInitramfs.KernelRelease();
        Assert.True(release is not null && QemuMachine.Supported, "network boot needs qemu-system-x86, ipxe-qemu and linux-image-cloud-amd64 (scripts/install-deps.sh)");
        using var state = new TempDirectory("heddle-boot-");
        File.SetUnixFileMode(state.Path, global::Heddle.Agent.Isolation.StateFolders.PassThrough); // dnsmasq drops to a user of its own
        using var uids = global::Heddle.Agent.Isolation.UidBlock.Lease();
        await using var bed = await TestBed.CreateAsync("ctl", "boot", "m1");
        var (ctl, boot) = (bed["ctl"], bed["boot"]);
        var client = new Dictionary<string, string> { ["HEDDLE_HOME"] = state.Combine("client") };
        Task<ProcessResult> Heddle(params string[] args) => ctl.RunAsync(TimeSpan.FromSeconds(30), client, global::Heddle.EndToEnd.Tests.Heddle.Executable, args);

        var controller = ctl.Start("controller", global::Heddle.EndToEnd.Tests.Heddle.Executable, [
            "controller", "--state", state.Combine("ctl"), "--listen", ctl.Address.ToString(), "--no-lb", "--no-dns",
        ]);
        await controller.WaitForOutputAsync("API https://", Deadline);
        var urls = ControllerUrls().Match(controller.Output);
        var (apiUrl, agentUrl) = (urls.Groups["api"].Value, urls.Groups["agents"].Value);
        Directory.CreateDirectory(state.Combine("client"));
        Check(await Heddle("login", apiUrl, "--token", File.ReadAllText(state.Combine("ctl", "api-token")).Trim(), "--ca-file", state.Combine("ctl", "ca.crt")));
        var known = $"52:54:00:{bed.Subnet:x2}:00:01";
        var unknown = $"52:54:00:{bed.Subnet:x2}:00:99";
        Check(await Heddle("machine", "add", known.ToUpperInvariant(), "--name", "m1", "--fault-domain", "rack-1"));
        var bootToken = Check(await Heddle("token", "create", "--boot")).Stdout.Trim();
        File.WriteAllText(state.Combine("boot-token"), bootToken);

        var initrd = state.Combine("initrd.gz");
        TestInitramfs.Write(initrd, release!);
        await using var reports = await ReportListener.StartAsync(ctl);
        // iPXE waits 16 s for IPv6 autoconfiguration unless someone sends router advertisements: heddle boot has dnsmasq
        // send them when the interface has a global IPv6 address.
        Check(await boot.RunAsync("/usr/sbin/ip", "-6", "addr", "add", $"fd77:{bed.Subnet:x}::11/64", "dev", "eth0", "nodad"));
        var bootService = boot.Start("boot", global::Heddle.EndToEnd.Tests.Heddle.Executable, [
            "boot", "--interface", "eth0", "--controller", apiUrl, "--token-file", state.Combine("boot-token"), "--ca-file", state.Combine("ctl", "ca.crt"),
            "--kernel", $"/boot/vmlinuz-{release}", "--initrd", initrd, "--state", state.Combine("boot"),
            "--append", $"console=ttyS0 quiet heddle.report={reports.Url}",
        ]);
        await bootService.WaitForOutputAsync("heddle boot: scripts at", Deadline);

        string report;
        TimeSpan reported;
        var poweredOn = DateTimeOffset.UtcNow;
        await using (var machine = await QemuMachine.StartAsync(bed.Bridge, $"{bed.Bridge}t1", known))
        {
            try
            {
                report = (await Poll.UntilAsync(() => Task.FromResult(reports.Reports.ToList()), r => r.Count > 0, Deadline, "the known machine's report", TimeSpan.FromMilliseconds(20)))[0].Body;
                reported = machine.SincePowerOn.Elapsed;
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message}\nmachine console:\n{machine.Console}\nboot service:\n{bootService.Output}", e);
            }

            var scriptServed = bootService.LinesWith($"{known} from ", poweredOn).Select(l => (l.Time - poweredOn).TotalSeconds).FirstOrDefault();
            output.WriteLine($"power-on → iPXE script: {scriptServed:0.0} s; → report from the booted kernel's init: {reported.TotalSeconds:0.0} s (TCG, 1 CPU, 512 MiB)");
            output.WriteLine(string.Join('\n', machine.Console.Split('\n').Where(l => l.Contains("init:", StringComparison.Ordinal)).Select(l => TerminalCodes().Replace(l, string.Empty))));
        }

        output.WriteLine($"report: {Regex.Replace(report, "hjoin\\.[0-9a-f]+\\.", "hjoin.<secret>.")}");
        Assert.Contains($"heddle.controller={agentUrl}", report);
        Assert.Contains("heddle.node=m1 heddle.fault-domain=rack-1 heddle.join=hjoin.", report);
        var address = Regex.Match(report, @"address=198\.18\.\d+\.(\d+)/24");
        Assert.True(address.Success && int.Parse(address.Groups[1].Value, CultureInfo.InvariantCulture) >= 128, $"a lease from the DHCP range (upper half of the subnet): {report}");
        var join = Regex.Match(report, @"heddle\.join=(hjoin\.[0-9a-f]+\.[0-9a-f]{64})").Groups[1].Value;
        Assert.Contains($"{known} from ", bootService.Output);
        Assert.DoesNotContain(join, bootService.Output); // the secret is in the script, never in a log
        var machines = JsonDocument.Parse(Check(await Heddle("machine", "list", "-o", "json")).Stdout).RootElement;
        Assert.Equal("JoinIssued", machines[0].GetProperty("state").GetString(), ignoreCase: true);

        // The join string enrols node m1, in the machine's fault domain whatever the agent says. (The booted machine runs
        // no agent yet: an agent on a bed host of its own stands in for it.)
        Directory.CreateDirectory(state.Combine("m1"));
        File.SetUnixFileMode(state.Combine("m1"), global::Heddle.Agent.Isolation.StateFolders.PassThrough);
        var agent = bed["m1"].Start("agent", global::Heddle.EndToEnd.Tests.Heddle.Executable, [
            "agent", "--state", state.Combine("m1"), "--address", bed["m1"].Address.ToString(), "--controller", agentUrl, "--name", "m1", "--fault-domain", "says-otherwise",
            "--cores", "1", "--stop-instances-on-exit", "--uid-range", uids.Range.ToString(),
        ], new Dictionary<string, string> { ["HEDDLE_JOIN"] = join });
        await agent.WaitForOutputAsync("Connected to the controller", Deadline);
        var node = await Poll.UntilAsync(async () => JsonDocument.Parse(Check(await Heddle("nodes", "-o", "json")).Stdout).RootElement.EnumerateArray().ToList(), n => n.Count == 1, Deadline, "node m1");
        Assert.Equal(("m1", "rack-1"), (node[0].GetProperty("name").GetString(), node[0].GetProperty("faultDomain").GetString()));
        machines = JsonDocument.Parse(Check(await Heddle("machine", "list", "-o", "json")).Stdout).RootElement;
        Assert.Equal("Enrolled", machines[0].GetProperty("state").GetString(), ignoreCase: true);

        await using (var stranger = await QemuMachine.StartAsync(bed.Bridge, $"{bed.Bridge}t2", unknown))
        {
            await Poll.UntilAsync(() => Heddle("events", "-o", "json"), r => r.Stdout.Contains("UnknownMachineBooted", StringComparison.Ordinal), Deadline,
                "an UnknownMachineBooted event", TimeSpan.FromMilliseconds(200));
            output.WriteLine($"unknown machine: power-on → event: {stranger.SincePowerOn.Elapsed.TotalSeconds:0.0} s");
            await bootService.WaitForOutputAsync($"{unknown} from ", Deadline);
        }

        var events = JsonDocument.Parse(Check(await Heddle("events", "-o", "json")).Stdout).RootElement.EnumerateArray()
            .Where(e => e.GetProperty("kind").GetString() == "UnknownMachineBooted").ToList();
        Assert.Equal(unknown, Assert.Single(events).GetProperty("subject").GetString());
        Assert.Contains($"{unknown} from ", bootService.Output);
        Assert.All(bootService.Output.Split('\n').Where(l => l.Contains($"{unknown} from ", StringComparison.Ordinal)), l => Assert.EndsWith(": NoImage", l.TrimEnd()));
        Assert.Single(reports.Reports); // the stranger never booted a kernel that could report
    }

    private static ProcessResult Check(ProcessResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    [GeneratedRegex(@"\x1b(\[[0-9;?]*[A-Za-z]|c)")]
    private static partial Regex TerminalCodes();

    [GeneratedRegex(@"API (?<api>https://\S+), agents (?<agents>https://\S+),")]
    private static partial Regex ControllerUrls();
}
