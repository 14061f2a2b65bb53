using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Heddle.Testing;
using Heddle.Testing.Boot;
using Heddle.Testing.Hosts;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests.Hosts;

/// <summary>
/// Machines become nodes by being switched on, and their hosts are updated by upgrade domain, on real machines: a
/// controller (host ctl) with its load balancer, `heddle hostimage build` making host images of the Debian cloud kernel,
/// busybox and the built heddle, two machines registered to boot img-1 in two fault domains, `heddle boot` (host boot)
/// handing them out, and two QEMU machines (TCG) network-booting through iPXE: each init takes a lease and starts the
/// agent with the join string of its kernel command line, and the node turns Ready with no one standing in for it,
/// showing its image in `heddle nodes`. Power-on → node Ready is printed (the issue's target: under 60 s under TCG).
/// Then a busybox httpd service (process driver) of two instances is served through its VIP, a client loop in the
/// controller's namespace asks the VIP five times a second, and `heddle hostimage rollout img-2` drains each machine,
/// tells it to reboot (QEMU resets it), and it network-boots img-2 and enrols again, one at a time: the client sees no
/// failed request. Last, m1 is set back to img-1 by hand and its power is cut and comes back: the disk-less machine lost
/// its certificate with its memory, is told to wait while its node was heard from moments ago, then enrols again by
/// itself on img-1. (One scenario: each QEMU boot under TCG costs tens of seconds of both cores.)
/// </summary>
[Collection(BedCollection.Name)]
[Trait("Category", BedCollection.Category)]
public sealed partial class HostImageBootTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    // TCG on a shared, loaded machine, two guests at once: generous, and the figures printed say how long it really took.
    private static readonly TimeSpan ReadyDeadline = TimeSpan.FromMinutes(8);
    private static readonly TimeSpan RolloutDeadline = TimeSpan.FromMinutes(20);

    [Fact]
    public async Task MachinesSetToAHostImage_NetworkBootIntoReadyNodes_ARolloutWalksThemWithNoFailedRequest_AndAPowerCutMachineEnrolsAgain()
    {
        Assert.True(TestInitramfs.KernelRelease() is not null && QemuMachine.Supported, "network boot needs qemu-system-x86, ipxe-qemu and linux-image-cloud-amd64 (scripts/install-deps.sh)");
        using var state = new TempDirectory("heddle-hostimage-");
        File.SetUnixFileMode(state.Path, global::Heddle.Agent.Isolation.StateFolders.PassThrough); // dnsmasq drops to a user of its own
        await using var bed = await TestBed.CreateAsync("ctl", "boot");
        var (ctl, boot) = (bed["ctl"], bed["boot"]);
        var client = new Dictionary<string, string> { ["HEDDLE_HOME"] = state.Combine("client") };
        Task<ProcessResult> Heddle(TimeSpan deadline, params string[] args) => ctl.RunAsync(deadline, client, global::Heddle.EndToEnd.Tests.Heddle.Executable, args);

        var controller = ctl.Start("controller", global::Heddle.EndToEnd.Tests.Heddle.Executable, [
            "controller", "--state", state.Combine("ctl"), "--listen", ctl.Address.ToString(), "--no-dns",
        ]);
        await controller.WaitForOutputAsync("API https://", Deadline);
        var apiUrl = ControllerUrls().Match(controller.Output).Groups["api"].Value;
        Directory.CreateDirectory(state.Combine("client"));
        Check(await Heddle(Deadline, "login", apiUrl, "--token", File.ReadAllText(state.Combine("ctl", "api-token")).Trim(), "--ca-file", state.Combine("ctl", "ca.crt")));

        var singleFile = SingleFileHeddle();
        var built = Stopwatch.StartNew();
        var build = Check(await Heddle(TimeSpan.FromMinutes(3), "hostimage", "build", "img-1", "--heddle", singleFile));
        output.WriteLine($"the image's heddle: {singleFile}");
        output.WriteLine($"heddle hostimage build: {built.Elapsed.TotalSeconds:0.0} s: {build.Stderr.Trim()} / {build.Stdout.Trim()}");
        Check(await Heddle(TimeSpan.FromMinutes(3), "hostimage", "build", "img-2", "--heddle", singleFile));
        var macs = new[] { $"52:54:00:{bed.Subnet:x2}:00:01", $"52:54:00:{bed.Subnet:x2}:00:02" };
        Check(await Heddle(Deadline, "machine", "add", macs[0], "--name", "m1", "--fault-domain", "rack-1", "--host-image", "img-1"));
        Check(await Heddle(Deadline, "machine", "add", macs[1], "--name", "m2", "--fault-domain", "rack-2", "--host-image", "img-1"));
        var inUse = await Heddle(Deadline, "hostimage", "delete", "img-1");
        Assert.True(inUse.ExitCode != 0 && inUse.Stderr.Contains("host image img-1 is the one machines m1, m2 are set to boot", StringComparison.Ordinal), inUse.ToString());
        File.WriteAllText(state.Combine("boot-token"), Check(await Heddle(Deadline, "token", "create", "--boot")).Stdout.Trim());

        // iPXE waits 16 s for IPv6 autoconfiguration unless someone sends router advertisements (dnsmasq does, for an
        // interface with a global IPv6 address).
        Check(await boot.RunAsync("/usr/sbin/ip", "-6", "addr", "add", $"fd77:{bed.Subnet:x}::11/64", "dev", "eth0", "nodad"));
        var bootService = boot.Start("boot", global::Heddle.EndToEnd.Tests.Heddle.Executable, [
            "boot", "--interface", "eth0", "--controller", apiUrl, "--token-file", state.Combine("boot-token"), "--ca-file", state.Combine("ctl", "ca.crt"),
            "--state", state.Combine("boot"), "--append", "console=ttyS0 quiet",
        ]);
        await bootService.WaitForOutputAsync("heddle boot: scripts at", Deadline);

        var poweredOn = DateTimeOffset.UtcNow;
        // One virtual CPU each (an instance needs one core): two machines of two emulated CPUs each on this 2-core host
        // took the test 5 min 2 s (both Ready 60.3 s after power-on, the power cut's boot 59.1 s); of one each, 4 min
        // (53.5 s, 40.2 s).
        var m1 = await QemuMachine.StartAsync(bed.Bridge, $"{bed.Bridge}t1", macs[0], memoryMiB: 1024, cpus: 1, rebootable: true);
        await using var m2 = await QemuMachine.StartAsync(bed.Bridge, $"{bed.Bridge}t2", macs[1], memoryMiB: 1024, cpus: 1, rebootable: true);
        string Describe() => $"m1 console:\n{Clean(m1.Console)}\nm2 console:\n{Clean(m2.Console)}\nboot service:\n{bootService.Output}\ncontroller:\n{controller.Output}";
        async Task<List<JsonElement>> NodesAsync() => JsonDocument.Parse(Check(await Heddle(Deadline, "nodes", "-o", "json")).Stdout).RootElement.EnumerateArray().ToList();
        async Task<List<string>> EnrolmentsAsync() => [.. JsonDocument.Parse(Check(await Heddle(Deadline, "events", "-o", "json")).Stdout).RootElement.EnumerateArray()
            .Where(x => x.GetProperty("kind").GetString() == "NodeEnrolled").Select(x => x.GetProperty("message").GetString()!)];
        try
        {
            var nodes = await Poll.UntilAsync(NodesAsync, n => n.Count == 2 && n.All(x => x.GetProperty("condition").GetString() == "Ready"), ReadyDeadline, "m1 and m2 Ready", TimeSpan.FromMilliseconds(250));
            var ready = m1.SincePowerOn.Elapsed;
            var console = Clean(m1.Console);
            double? At(string marker) => console.Split('\n').Where(l => l.Contains(marker, StringComparison.Ordinal))
                .Select(l => double.Parse(l[1..l.IndexOf(']', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture)).Cast<double?>().FirstOrDefault();
            var script = bootService.LinesWith($"{macs[0]} from ", poweredOn).Select(l => (l.Time - poweredOn).TotalSeconds).FirstOrDefault();
            output.WriteLine($"power-on → both nodes Ready: {ready.TotalSeconds:0.0} s (TCG, two machines of 1 CPU and 1 GiB at once; target under 60 s); m1's iPXE script at {script:0.0} s, "
                + $"init at {At("heddle-init: img-1 up"):0.0} s, lease at {At(" on eth0 at "):0.0} s, agent started at {At("starting the agent"):0.0} s");
            output.WriteLine(string.Join('\n', console.Split('\n').Where(l => l.Contains("heddle-init:", StringComparison.Ordinal) || l.Contains("agent", StringComparison.OrdinalIgnoreCase))));

            Assert.Equal([("m1", "rack-1", "img-1"), ("m2", "rack-2", "img-1")],
                nodes.Select(n => (n.GetProperty("name").GetString(), n.GetProperty("faultDomain").GetString(), n.GetProperty("hostImage").GetString())).Order());
            Assert.All(nodes, n => Assert.Equal(["process"], n.GetProperty("drivers").EnumerateArray().Select(d => d.GetString())));
            Assert.Contains("The container driver is unavailable on this node", console); // the image has no runc: it says so, and runs processes
            var table = Check(await Heddle(Deadline, "nodes")).Stdout;
            output.WriteLine(table);
            Assert.Matches(@"HOST IMAGE", table);
            Assert.Matches(@"\bm1\b.*\bReady\b.*\bimg-1\b", table);
            var images = JsonDocument.Parse(Check(await Heddle(Deadline, "hostimage", "list", "-o", "json")).Stdout).RootElement.EnumerateArray()
                .ToDictionary(i => i.GetProperty("name").GetString()!, i => i.GetProperty("nodes").EnumerateArray().Select(n => n.GetString()).Order().ToList());
            Assert.Equal(["m1", "m2"], images["img-1"]);
            Assert.Empty(images["img-2"]);

            var package = Package(state);
            Check(await Heddle(Deadline, "pack", state.Combine("static"), "--output", package));
            Check(await Heddle(TimeSpan.FromMinutes(5), "deploy", package, "--config", state.Combine("static.config.yaml"), "--wait"));
            var vip = JsonDocument.Parse(Check(await Heddle(Deadline, "status", "static", "-o", "json")).Stdout).RootElement.GetProperty("vip").GetString()!;
            var url = $"http://{vip}:8080/www/index.html";
            await Poll.UntilAsync(() => ctl.RunAsync(TimeSpan.FromSeconds(10), client, "/usr/bin/curl", "-sf", "-m", "3", url), r => r.ExitCode == 0, Deadline, $"{url} served");

            async Task<List<string>> PlacedAsync() => [.. JsonDocument.Parse(Check(await Heddle(Deadline, "instances", "static", "-o", "json")).Stdout).RootElement.EnumerateArray()
                .Select(i => $"{i.GetProperty("id").GetString()}@{i.GetProperty("node").GetString()}").Order(StringComparer.Ordinal)];
            var placed = await PlacedAsync();
            Assert.Equal(2, placed.Select(p => p.Split('@')[1]).Distinct().Count());

            // Owned by the bed (stopped here, disposed with its host).
            var loop = ctl.Start("client", "/bin/sh", ["-c", $"while :; do if /usr/bin/curl -sf -m 3 -o /dev/null {url}; then echo ok; else echo FAIL; fi; sleep 0.2; done"]);
            await loop.WaitForOutputAsync("ok", Deadline);
            Check(await Heddle(Deadline, "hostimage", "rollout", "img-2"));
            var status = await Poll.UntilAsync(async () => JsonDocument.Parse(Check(await Heddle(Deadline, "hostimage", "rollout", "status", "-o", "json")).Stdout).RootElement.Clone(),
                s => s.GetProperty("phase").GetString() is "Done" or "Failed", RolloutDeadline, "the rollout ended", TimeSpan.FromSeconds(2));
            await loop.StopAsync();
            var answers = loop.LinesWith(string.Empty, DateTimeOffset.MinValue);
            var failed = answers.Where(a => a.Line == "FAIL").Select(a => a.Time).ToList();

            var events = Check(await Heddle(Deadline, "events")).Stdout;
            output.WriteLine(string.Join('\n', events.Split('\n').Where(l => l.Contains("Host", StringComparison.Ordinal) || l.Contains("Instance", StringComparison.Ordinal))));
            output.WriteLine($"client: {answers.Count(a => a.Line == "ok")} requests served, {failed.Count} failed{(failed.Count == 0 ? string.Empty : $" (at {string.Join(", ", failed.Select(t => t.ToString("HH:mm:ss.fff")))})")}");
            Assert.True(status.GetProperty("phase").GetString() == "Done", $"{status}\n{events}\n{Describe()}");
            Assert.Equal(["m1", "m2"], status.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("node").GetString()));
            Assert.All(await NodesAsync(), n => Assert.Equal("img-2", n.GetProperty("hostImage").GetString()));
            Assert.Contains("heddle-init: img-2 up", Clean(m1.Console));
            Assert.Contains("heddle-init: img-2 up", Clean(m2.Console));
            Assert.True(answers.Count(a => a.Line == "ok") > 100, $"the client loop ran throughout: {answers.Count} answers");
            Assert.Empty(failed);
            Assert.Equal(placed, await PlacedAsync()); // each instance stayed placed on its node through the reboot and started there again
            Assert.DoesNotContain("hjoin.", bootService.Output); // the secret is in the script, never in a log

            // A host update by hand: m1 is set back to img-1, which it boots from its next boot on. Then a power cut and
            // back: its card asks again, is told to wait while its node was heard from moments ago, then gets img-1 and a
            // join string that enrols m1 again, with no one doing anything more.
            Assert.Contains("boots host image img-1 from its next boot on", Check(await Heddle(Deadline, "machine", "set-image", "m1", "img-1")).Stdout);
            var enrolledBefore = (await EnrolmentsAsync()).Count;
            await m1.DisposeAsync();
            var poweredOnAgain = DateTimeOffset.UtcNow;
            m1 = await QemuMachine.StartAsync(bed.Bridge, $"{bed.Bridge}t1", macs[0], memoryMiB: 1024, cpus: 1, rebootable: true);
            await Poll.UntilAsync(EnrolmentsAsync, e => e.Count > enrolledBefore, ReadyDeadline, "node m1 enrolled again");
            await Poll.UntilAsync(NodesAsync, n => n.Single(x => x.GetProperty("name").GetString() == "m1") is var m
                && m.GetProperty("condition").GetString() == "Ready" && m.GetProperty("hostImage").GetString() == "img-1", ReadyDeadline, "node m1 Ready again on img-1", TimeSpan.FromMilliseconds(250));
            output.WriteLine($"power cut, then on again → node m1 Ready again on img-1: {m1.SincePowerOn.Elapsed.TotalSeconds:0.0} s; the boot service's answers since: "
                + string.Join("; ", bootService.LinesWith($"{macs[0]} from ", poweredOnAgain).Select(l => $"{(l.Time - poweredOnAgain).TotalSeconds:0.0} s {l.Line[(l.Line.IndexOf(": ", StringComparison.Ordinal) + 2)..]}")));
            Assert.Contains("booted host image img-1 again", (await EnrolmentsAsync())[^1]);
            Assert.Contains("heddle-init: img-1 up", Clean(m1.Console));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{Describe()}", e);
        }
        finally
        {
            await m1.DisposeAsync();
        }
    }

    /// <summary>The single-file heddle the image holds: the one `scripts/build.sh` makes (ReadyToRun, as JIT under TCG is several times slower).</summary>
    internal static string SingleFileHeddle()
    {
        var built = Path.Combine(RepositoryRootAttribute.Value, "artifacts", "heddle", "heddle");
        return File.Exists(built) ? built : throw new InvalidOperationException($"no single-file heddle at {built}: run scripts/build.sh");
    }

    /// <summary>The folder of busybox httpd (the static sample's role) under the process driver (the host image has busybox and no runc); the package file 'heddle pack' is to write.</summary>
    private static string Package(TempDirectory state)
    {
        var source = state.Combine("static");
        Directory.CreateDirectory(Path.Combine(source, "roles", "web", "www"));
        File.WriteAllText(Path.Combine(source, "roles", "web", "www", "index.html"), "<p>static</p>\n");
        File.WriteAllText(Path.Combine(source, "service.yaml"), """
            name: static
            upgradeDomains: 2
            roles:
              web:
                driver: process
                entryPoint: { command: /bin/sh, args: [-c, 'exec /bin/busybox httpd -f -p "$HEDDLE_ADDRESS:$HEDDLE_PORT_HTTP" -h .'] }
                size: { cores: 1, memoryMiB: 64 }
                endpoints:
                  http: { kind: input, protocol: http, port: 8080 }
                probe: { http: { endpoint: http, path: /www/index.html }, intervalSeconds: 1, timeoutSeconds: 1, unhealthyThreshold: 3 }
            """);
        File.WriteAllText(state.Combine("static.config.yaml"), "service: static\nroles:\n  web: { instances: 2 }\n");
        return state.Combine("static.hpkg");
    }

    internal static ProcessResult Check(ProcessResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    internal static string Clean(string console) => TerminalCodes().Replace(console, string.Empty).Replace("\r", string.Empty, StringComparison.Ordinal);

    [GeneratedRegex(@"\x1b(\[[0-9;?]*[A-Za-z]|c)")]
    private static partial Regex TerminalCodes();

    [GeneratedRegex(@"API (?<api>https://\S+), agents (?<agents>https://\S+),")]
    internal static partial Regex ControllerUrls();
}
