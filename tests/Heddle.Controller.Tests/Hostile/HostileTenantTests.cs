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

    private const string ServiceYaml = """
        name: hostile
        upgradeDomains: 1
        roles:
          attacker:
            entryPoint: { command: python3, args: [-u, hostile.py] }
            size: { cores: 1, memoryMiB: 64, maxProcesses: 64 }
            settings: [StateDir, VictimDir, VictimPid]
        """;

    private static string Package(TempDirectory work)
    {
        var source = work.Combine("hostile-src");
        Directory.CreateDirectory(Path.Combine(source, "roles", "attacker"));
        File.WriteAllText(Path.Combine(source, "service.yaml"), ServiceYaml);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Hostile", "hostile.py"), Path.Combine(source, "roles", "attacker", "hostile.py"));
        var diagnostics = new DiagnosticBag();
        var output = work.Combine("hostile.hpkg");
        return PackageBuilder.Pack(source, output, diagnostics) is null ? throw new InvalidOperationException(string.Join("; ", diagnostics.Items)) : output;
    }

    [Fact]
    public async Task HostileTenant_EveryEscapeFails_AndTheOtherServiceKeepsServing()
    {
        Assert.True(Heddle.Agent.Drivers.Posix.IsRoot, "the isolation tests run as root, as CI does");
        using var work = new TempDirectory();
        await using var cluster = await TestCluster.StartAsync(nodes: 1, coresPerNode: 6);
        await cluster.DeploySampleAsync();
        var victim = (await cluster.WaitUntilReadyAsync("hello", 4, Deadline)).Instances.First(i => i.Role == "web");
        var victimDir = cluster.Agents[0]!.Supervisor.DirectoryOf(victim.Id)!;
        using var http = new HttpClient();
        var url = $"http://{victim.NodeAddress}:{victim.Ports["http"]}/";
        Assert.Equal($"hi from {victim.Id}\n", await http.GetStringAsync(url));

        var upload = await cluster.Api.UploadPackageAsync(Package(work));
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256,
            $"service: hostile\nroles:\n  attacker: {{ instances: 1, settings: {{ StateDir: \"{cluster.StateDirectory}\", VictimDir: \"{victimDir}\", VictimPid: \"{victim.Pid}\" }} }}\n"));
        var attacker = (await cluster.WaitUntilReadyAsync("hostile", 1, Deadline)).Instances.Single();
        var attackerDir = cluster.Agents[0]!.Supervisor.DirectoryOf(attacker.Id)!;
        var results = Path.Combine(attackerDir, "app", "results.jsonl");
        await Poll.UntilAsync(() => File.Exists(results) && File.ReadAllText(results).Contains("\"attempt\": \"done\""), Deadline, "the attacker to finish");

        var lines = File.ReadAllLines(results).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        lines.ForEach(l => output.WriteLine(l.ToString()));
        var managed = lines.Where(l => l.GetProperty("managed").GetBoolean()).Select(l => $"{l.GetProperty("attempt").GetString()}: {l.GetProperty("detail").GetString()}").ToList();
        Assert.True(managed.Count == 0, "the hostile tenant managed: " + string.Join(" | ", managed));
        Assert.True(lines.Count >= 20, $"only {lines.Count} attempts were made: {string.Join(" | ", lines)}");
        Assert.NotEqual("0", lines.Single(l => l.GetProperty("attempt").GetString() == "done").GetProperty("detail").GetString());

        // The other service kept serving, from the same process.
        Assert.Equal($"hi from {victim.Id}\n", await http.GetStringAsync(url));
        Assert.Equal(victim.Pid, (await cluster.Api.GetServiceAsync("hello")).Instances.Single(i => i.Id == victim.Id).Pid);

        // A child that made a session of its own does not outlive its service.
        var survivor = int.Parse(File.ReadAllText(Path.Combine(attackerDir, "app", "survivor.pid")).Trim());
        var survivorStart = Heddle.Agent.Drivers.Posix.StartTime(survivor);
        Assert.NotNull(survivorStart);
        await cluster.Api.DeleteServiceAsync("hostile");
        await Poll.UntilAsync(() => cluster.Api.ListServicesAsync(), s => s.All(x => x.Name != "hostile"), Deadline, "hostile deleted");
        await Poll.UntilAsync(() => !Heddle.Agent.Drivers.Posix.IsAlive(survivor, survivorStart!.Value), TimeSpan.FromSeconds(10), "the setsid child gone");
    }

    [Fact]
    public async Task ContainerRole_OnNodesWithoutTheContainerDriver_IsNotPlaced_AndNeverRunsAsAProcess()
    {
        using var work = new TempDirectory();
        await using var cluster = await TestCluster.StartAsync(nodes: 2);
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
        Assert.Empty((await cluster.Api.GetServiceAsync("boxed")).Instances);
        Assert.All(await cluster.Api.ListNodesAsync(), n => Assert.Equal(["process"], n.Drivers));
        Assert.Empty(cluster.InstanceProcesses());
    }
}
