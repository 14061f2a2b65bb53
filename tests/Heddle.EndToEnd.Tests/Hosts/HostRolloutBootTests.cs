using System.Text.Json;
using Heddle.Testing;
using Heddle.Testing.Boot;
using Heddle.Testing.Hosts;
using Xunit.Abstractions;
using static Heddle.EndToEnd.Tests.Hosts.HostImageBootTests;

namespace Heddle.EndToEnd.Tests.Hosts;

/// <summary>
/// A host update by upgrade domain on real machines: the bed of <see cref="HostImageBootTests"/> with two QEMU machines
/// (TCG) in two fault domains on img-1, a busybox httpd service (process driver) of two instances served through its VIP
/// by the controller's load balancer, a client loop in the controller's namespace asking the VIP five times a second,
/// then `heddle hostimage rollout img-2`: each machine is drained, told to reboot (QEMU resets it: no -no-reboot),
/// network-boots img-2 and enrols again, one at a time. The client sees no failed request throughout.
/// </summary>
[Collection(BedCollection.Name)]
[Trait("Category", BedCollection.Category)]
public sealed class HostRolloutBootTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    // TCG on a shared, loaded machine, two guests at once.
    private static readonly TimeSpan ReadyDeadline = TimeSpan.FromMinutes(8);
    private static readonly TimeSpan RolloutDeadline = TimeSpan.FromMinutes(20);

    [Fact]
    public async Task Rollout_WalksTwoNetworkBootedMachinesOneAtATime_WhileAClientThroughTheVipSeesNoFailedRequest()
    {
        Assert.True(TestInitramfs.KernelRelease() is not null && QemuMachine.Supported, "network boot needs qemu-system-x86, ipxe-qemu and linux-image-cloud-amd64 (scripts/install-deps.sh)");
        using var state = new TempDirectory("heddle-hostrollout-");
        File.SetUnixFileMode(state.Path, global::Heddle.Agent.Isolation.StateFolders.PassThrough);
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
        Check(await Heddle(TimeSpan.FromMinutes(3), "hostimage", "build", "img-1", "--heddle", singleFile));
        Check(await Heddle(TimeSpan.FromMinutes(3), "hostimage", "build", "img-2", "--heddle", singleFile));
        var macs = new[] { $"52:54:00:{bed.Subnet:x2}:00:01", $"52:54:00:{bed.Subnet:x2}:00:02" };
        Check(await Heddle(Deadline, "machine", "add", macs[0], "--name", "m1", "--fault-domain", "rack-1", "--host-image", "img-1"));
        Check(await Heddle(Deadline, "machine", "add", macs[1], "--name", "m2", "--fault-domain", "rack-2", "--host-image", "img-1"));
        File.WriteAllText(state.Combine("boot-token"), Check(await Heddle(Deadline, "token", "create", "--boot")).Stdout.Trim());
        Check(await boot.RunAsync("/usr/sbin/ip", "-6", "addr", "add", $"fd77:{bed.Subnet:x}::11/64", "dev", "eth0", "nodad"));
        var bootService = boot.Start("boot", global::Heddle.EndToEnd.Tests.Heddle.Executable, [
            "boot", "--interface", "eth0", "--controller", apiUrl, "--token-file", state.Combine("boot-token"), "--ca-file", state.Combine("ctl", "ca.crt"),
            "--state", state.Combine("boot"), "--append", "console=ttyS0 quiet",
        ]);
        await bootService.WaitForOutputAsync("heddle boot: scripts at", Deadline);

        await using var m1 = await QemuMachine.StartAsync(bed.Bridge, $"{bed.Bridge}t1", macs[0], memoryMiB: 1024, cpus: 2, rebootable: true);
        await using var m2 = await QemuMachine.StartAsync(bed.Bridge, $"{bed.Bridge}t2", macs[1], memoryMiB: 1024, cpus: 2, rebootable: true);
        string Describe() => $"m1 console:\n{Clean(m1.Console)}\nm2 console:\n{Clean(m2.Console)}\nboot service:\n{bootService.Output}\ncontroller:\n{controller.Output}";
        async Task<List<JsonElement>> NodesAsync() => JsonDocument.Parse(Check(await Heddle(Deadline, "nodes", "-o", "json")).Stdout).RootElement.EnumerateArray().ToList();
        try
        {
            await Poll.UntilAsync(NodesAsync, n => n.Count == 2 && n.All(x => x.GetProperty("condition").GetString() == "Ready"), ReadyDeadline, "m1 and m2 Ready", TimeSpan.FromSeconds(1));
            output.WriteLine($"both machines Ready {m1.SincePowerOn.Elapsed.TotalSeconds:0.0} s after power-on");

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
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{Describe()}", e);
        }
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
}
