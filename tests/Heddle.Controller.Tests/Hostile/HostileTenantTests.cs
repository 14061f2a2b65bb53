using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Model.Diagnostics;
using Heddle.Packaging;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Hostile;

/// <summary>
/// A hostile tenant (hostile.py beside this file) tries every escape the isolation issue lists, on a real cluster as
/// root, while another service runs beside it; every attempt must fail, and the other service keeps serving.
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class HostileTenantTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static string ServiceYaml(bool container) => $$"""
        name: hostile
        upgradeDomains: 1
        roles:
          attacker:
            {{(container ? "driver: container\n    image: python-test" : "driver: process")}}
            entryPoint: { command: python3, args: [-u, hostile.py] }
            size: { cores: 1, memoryMiB: 64, maxProcesses: 64, diskMiB: 48 }
            settings: [StateDir, VictimDir, VictimPid, Driver, DiskMiB]
        """;

    private static string Package(TempDirectory work, bool container)
    {
        var source = work.Combine("hostile-src");
        Directory.CreateDirectory(Path.Combine(source, "roles", "attacker"));
        File.WriteAllText(Path.Combine(source, "service.yaml"), ServiceYaml(container));
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Hostile", "hostile.py"), Path.Combine(source, "roles", "attacker", "hostile.py"));
        var diagnostics = new DiagnosticBag();
        var output = work.Combine("hostile.hpkg");
        return PackageBuilder.Pack(source, output, diagnostics) is null ? throw new InvalidOperationException(string.Join("; ", diagnostics.Items)) : output;
    }

    [Theory]
    [InlineData("process")]
    [InlineData("container")]
    public async Task HostileTenant_EveryEscapeFails_AndTheOtherServiceKeepsServing(string driver)
    {
        Assert.True(Heddle.Agent.Drivers.Posix.IsRoot, "the isolation tests run as root, as CI does");
        var container = driver == "container";
        using var work = new TempDirectory();
        await using var cluster = await TestCluster.StartAsync(nodes: 1, coresPerNode: 6);
        // Two tenants: bob runs the sample (the victim), alice the attacker.
        using var bob = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "bob"))).Token);
        using var alice = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token);
        var sample = await bob.UploadPackageAsync(SamplePackage.File);
        await bob.DeployAsync(new DeploymentRequest(sample.Sha256, File.ReadAllText(SamplePackage.ConfigurationPath), "hello.config.yaml"));
        var victim = (await cluster.WaitUntilReadyAsync("hello", 4, Deadline)).Instances.First(i => i.Role == "web");
        var victimDir = cluster.Agents[0]!.Supervisor.DirectoryOf(victim.Id)!;
        using var http = new HttpClient();
        var url = $"http://{victim.NodeAddress}:{victim.Ports["http"]}/";
        Assert.Equal($"hi from {victim.Id}\n", await http.GetStringAsync(url));

        if (container)
        {
            await cluster.Api.UploadImageAsync("python-test", TestImages.Tar(python: true));
        }

        var upload = await alice.UploadPackageAsync(Package(work, container));
        await alice.DeployAsync(new DeploymentRequest(upload.Sha256,
            $"service: hostile\nroles:\n  attacker: {{ instances: 1, settings: {{ StateDir: \"{cluster.StateDirectory}\", VictimDir: \"{victimDir}\", VictimPid: \"{victim.Pid}\", Driver: {driver}, DiskMiB: \"48\" }} }}\n"));
        var attacker = (await cluster.WaitUntilReadyAsync("hostile", 1, Deadline)).Instances.Single();
        var attackerDir = cluster.Agents[0]!.Supervisor.DirectoryOf(attacker.Id)!;
        // The container's working folder is /app in its own upper layer; the process driver's is app/.
        var app = container ? Path.Combine(attackerDir, "disk", "upper", "app") : Path.Combine(attackerDir, "disk", "app");
        var results = Path.Combine(app, "results.jsonl");
        await Poll.UntilAsync(() => File.Exists(results) && File.ReadAllText(results).Contains("\"attempt\": \"done\""), Deadline, "the attacker to finish");

        var lines = File.ReadAllLines(results).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        lines.ForEach(l => output.WriteLine(l.ToString()));
        var managed = lines.Where(l => l.GetProperty("managed").GetBoolean()).Select(l => $"{l.GetProperty("attempt").GetString()}: {l.GetProperty("detail").GetString()}").ToList();
        Assert.True(managed.Count == 0, "the hostile tenant managed: " + string.Join(" | ", managed));
        // In a container the node's package cache is not even there to be tried, but its seccomp filter is (keyctl).
        // User namespaces: a container's filter refuses them with EPERM (ENOSYS for clone3, so libc falls back to clone);
        // a process instance's own user namespace allows none below it (ENOSPC).
        Assert.True(lines.Count >= (container ? 33 : 34), $"only {lines.Count} attempts were made: {string.Join(" | ", lines)}");
        string Detail(string attempt) => lines.Single(l => l.GetProperty("attempt").GetString() == attempt).GetProperty("detail").GetString()!;
        var noUserNamespace = container ? "Operation not permitted" : "No space left on device";
        Assert.Contains(noUserNamespace, Detail("make a user namespace: unshare -Urm true"));
        Assert.Contains(noUserNamespace, Detail("make a user namespace: clone(CLONE_NEWUSER)"));
        Assert.Contains(container ? "Function not implemented" : noUserNamespace, Detail("make a user namespace: clone3(CLONE_NEWUSER)"));
        if (container)
        {
            Assert.Contains("Operation not permitted", Detail("use the kernel keyring: keyctl(JOIN_SESSION_KEYRING)"));
        }

        // Writing past the disk and /dev/shm failed for lack of space (not for some other reason).
        Assert.Contains("No space left on device", Detail("write past its disk in its working folder"));
        Assert.Contains("No space left on device", Detail("write past its disk in /tmp"));
        Assert.Contains("No space left on device", Detail("fill /dev/shm past its size"));
        Assert.NotEqual("0", lines.Single(l => l.GetProperty("attempt").GetString() == "done").GetProperty("detail").GetString());

        // `heddle instances` shows the attacker's disk: its size, and what it holds now that its big files are gone.
        // (Use is reported again once it moves, so a report from while it filled its disk is followed by a smaller one.)
        var disk = await Poll.UntilAsync(() => cluster.Api.GetServiceAsync("hostile"), s => s.Instances.Single() is { DiskSizeMiB: > 0, DiskUsedMiB: <= 8 }, Deadline, "the attacker's disk reported, its big files gone");
        Assert.InRange(disk.Instances.Single().DiskSizeMiB, 40, 48);

        // Through the API, alice learns nothing of bob's service or of the node, and cannot run bob's package.
        Assert.DoesNotContain(await alice.ListEventsAsync(), e => e.Subject is "hello" or "n1" || e.Message.Contains(sample.Sha256[..12], StringComparison.Ordinal));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await Assert.ThrowsAsync<HeddleApiException>(() => alice.GetServiceAsync("hello"))).Status);
        await Assert.ThrowsAsync<HeddleApiException>(() => alice.DeployAsync(new DeploymentRequest(sample.Sha256, "service: hello\nroles:\n  web: { instances: 1 }\n  worker: { instances: 1 }\n")));

        // The other service kept serving, from the same process.
        Assert.Equal($"hi from {victim.Id}\n", await http.GetStringAsync(url));
        Assert.Equal(victim.Pid, (await cluster.Api.GetServiceAsync("hello")).Instances.Single(i => i.Id == victim.Id).Pid);

        // A child that made a session of its own does not outlive its service: every task of the attacker (on the
        // host, whatever pid namespace it sees) is gone after the delete.
        var tasks = HostPidsOf(attacker.Id);
        Assert.True(tasks.Count >= 2, $"the attacker and its setsid child should be running; found {tasks.Count}");
        await cluster.Api.DeleteServiceAsync("hostile");
        await Poll.UntilAsync(() => cluster.Api.ListServicesAsync(), s => s.All(x => x.Name != "hostile"), Deadline, "hostile deleted");
        await Poll.UntilAsync(() => tasks.All(t => !Heddle.Agent.Drivers.Posix.IsAlive(t.Pid, t.Start)), TimeSpan.FromSeconds(10), "every task of the attacker gone");
        if (container)
        {
            Assert.DoesNotContain(File.ReadAllLines("/proc/mounts"), l => l.Contains(attackerDir, StringComparison.Ordinal));
            Assert.False(Directory.Exists(Path.Combine(attackerDir, "disk")), "the container's upper layer is left");
        }
    }

    /// <summary>Host processes whose cgroups name the instance (the pids hierarchy: both drivers place every task there).</summary>
    private static List<(int Pid, long Start)> HostPidsOf(string instanceId)
    {
        var name = "/" + string.Concat(instanceId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
        var found = new List<(int, long)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                if (File.ReadAllLines(Path.Combine(dir, "cgroup")).Any(l => l.Contains(":pids:", StringComparison.Ordinal) && l.EndsWith(name, StringComparison.Ordinal))
                    && Heddle.Agent.Drivers.Posix.StartTime(pid) is { } start)
                {
                    found.Add((pid, start));
                }
            }
            catch (IOException)
            {
            }
        }

        return found;
    }

    [Fact]
    public async Task ContainerRole_OnNodesWithoutTheContainerDriver_IsNotPlaced_AndNeverRunsAsAProcess()
    {
        using var work = new TempDirectory();
        await using var cluster = await TestCluster.StartAsync(nodes: 2, containers: false);
        await cluster.Api.UploadImageAsync("debian-12", TestImages.Tar());
        var package = TestPackages.Build(work, "boxed", """
            name: boxed
            roles:
              box:
                driver: container
                image: debian-12
                entryPoint: { command: /bin/sleep, args: ["600"] }
                size: { cores: 1, memoryMiB: 64 }
            """);
        var upload = await cluster.Api.UploadPackageAsync(package);
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, "service: boxed\nroles:\n  box: { instances: 1 }\n"));

        var failed = await Poll.UntilAsync(() => cluster.Api.ListEventsAsync(), e => e.Any(x => x.Kind == "PlacementFailed" && x.Subject == "boxed"), Deadline, "the placement failure");

        Assert.Contains("2 nodes: 2 container driver unavailable", failed.First(x => x.Kind == "PlacementFailed").Message);
        // `heddle status` lists the instance the configuration asks for as Unplaced, with the allocator's reason.
        var unplaced = Assert.Single((await cluster.Api.GetServiceAsync("boxed")).Instances);
        Assert.Equal(("boxed/box/0", InstanceStates.Unplaced), (unplaced.Id, unplaced.State));
        Assert.Contains("2 container driver unavailable", unplaced.Reason);
        Assert.All(await cluster.Api.ListNodesAsync(), n => Assert.Equal(["process"], n.Drivers));
        Assert.Empty(cluster.InstanceProcesses());
    }

    [Fact]
    public async Task AContainerRole_NamingAnImageTheClusterLacks_IsRefused_WithTheCommandThatAddsIt()
    {
        using var work = new TempDirectory();
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        var package = TestPackages.Build(work, "boxed", """
            name: boxed
            roles:
              box:
                driver: container
                image: debian-13
                entryPoint: { command: /bin/sleep, args: ["600"] }
                size: { cores: 1, memoryMiB: 64 }
            """);
        var upload = await cluster.Api.UploadPackageAsync(package);

        var refused = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, "service: boxed\nroles:\n  box: { instances: 1 }\n")));

        Assert.Contains("role box runs in image 'debian-13', which the cluster does not have: add it with 'heddle image build debian-13'", string.Join(" ", refused.Errors));
        Assert.Empty(await cluster.Api.ListServicesAsync());
    }
}
