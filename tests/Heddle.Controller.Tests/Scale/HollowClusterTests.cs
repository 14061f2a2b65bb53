using Heddle.Agent.Hollow;
using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Scale;

/// <summary>
/// A real controller and 200 hollow nodes (`heddle hollow`: the real agent with a driver that starts nothing) carrying
/// 2,000 instances of 20 services of three tenants: every instance Ready; 1% of the nodes lost and their instances
/// Ready elsewhere; every service scaled by 10%; everything deleted and nothing left. Behaviour, not speed.
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
[Trait("Category", Category)]
public sealed class HollowClusterTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>scripts/test.sh runs this category alone, after the rest: 200 agents and a controller in one process need the machine to themselves.</summary>
    public const string Category = "Scale";
    private const int Nodes = 200;
    private const int Services = 20;
    private static readonly string[] Tenants = ["alpha", "beta", "gamma"];
    /// <summary>A bound on each step for correctness, not a speed target: the test shares two cores with whatever else runs.</summary>
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    /// <summary>
    /// 100 per service (2,000 instances) is the size issue 27 asks for, with the controller and 200 agents in one test
    /// process on two shared cores. It finishes since goal states are computed by each stream's writer (a burst of
    /// changes is one goal state per node, and a change to peers only waits a second), a pass's events and a report's
    /// event go to the store with it, and hollow agents write no heddle-instance.json: on a machine at load 13, all
    /// Ready 32 s after the last deploy, the whole test in 155 s (before: 455 of 2,000 Ready after 60 s); on a quiet machine
    /// 67 s. Beside the end-to-end tests in CI it crawled (4.5 min, 1,347 of 2,200 still Pending 120 s after the scale),
    /// hence its category, run alone.
    /// </summary>
    [Theory]
    [InlineData(10)]
    [InlineData(100)]
    public async Task HollowNodes_DeployLoseOnePercentScaleDelete_AllReadyHealedScaledAndGone(int perService)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var cluster = await TestCluster.StartAsync(nodes: 0, nodeTimeout: TimeSpan.FromSeconds(5),
            configure: o => o with { DefaultQuota = QuotaLimits.Unlimited, ResyncInterval = TimeSpan.FromSeconds(5) });
        using var work = new TempDirectory("heddle-hollow-test-");
        await using var hollow = await HollowNodes.StartAsync(new HollowOptions
        {
            Controllers = [cluster.Controller.AgentUrl],
            Join = cluster.JoinString,
            Nodes = Nodes,
            CoresPerNode = 32,
            FaultDomains = 20,
            Subnet = 129 + Random.Shared.Next(100), // test processes running at once never share an address
            StateDirectory = work.Combine("hollow"),
        });
        await Poll.UntilAsync(() => cluster.Api.ListNodesAsync(), n => n.Count(x => x.Condition == nameof(NodeCondition.Ready)) == Nodes, Deadline, $"{Nodes} hollow nodes Ready");
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: {Nodes} nodes Ready");

        var clients = new Dictionary<string, HeddleApiClient>(StringComparer.Ordinal);
        foreach (var tenant in Tenants)
        {
            clients[tenant] = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: tenant))).Token);
        }

        try
        {
            var services = Enumerable.Range(0, Services).Select(s => (Name: $"svc{s}", Tenant: Tenants[s % Tenants.Length], Cores: 1 << (s % 3))).ToList();
            foreach (var (name, tenant, cores) in services)
            {
                var upload = await clients[tenant].UploadPackageAsync(Package(work, name, cores));
                await clients[tenant].DeployAsync(new DeploymentRequest(upload.Sha256, Configuration(name, perService)));
            }

            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: {Services} services deployed");

            var ready = await WaitAllReadyAsync(cluster, Services * perService, "every instance of the first deploy");
            Assert.All(services, s => Assert.Equal(perService, ready.Count(i => i.Service == s.Name)));
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: {ready.Count} instances Ready");

            // `heddle nodes` counts each node's instances and CPUs as the instance listing places them.
            var listed = await cluster.Api.ListNodesAsync();
            Assert.All(listed, n =>
            {
                Assert.Equal(ready.Count(i => i.Node == n.Name), n.Instances);
                Assert.Equal(ready.Where(i => i.Node == n.Name).Sum(i => i.Cpus.Count), n.AllocatedCpus);
            });
            Assert.Equal(ready.Count, listed.Sum(n => n.Instances));

            var lost = new[] { 0, 1 }.Select(i => hollow.Options.NodeName(i)).ToHashSet(StringComparer.Ordinal);
            var moved = ready.Where(i => lost.Contains(i.Node)).Select(i => i.Id).ToHashSet(StringComparer.Ordinal);
            Assert.NotEmpty(moved);
            await hollow.DropAsync(0);
            await hollow.DropAsync(1);
            await Poll.UntilAsync(() => cluster.Api.ListNodesAsync(), n => n.Count(x => lost.Contains(x.Name) && x.Condition == nameof(NodeCondition.Down)) == lost.Count,
                Deadline, "the dropped nodes Down");
            var healed = await WaitAllReadyAsync(cluster, Services * perService, "every instance after 1% of the nodes were lost", i => !lost.Contains(i.Node));
            Assert.Superset(moved, healed.Select(i => i.Id).ToHashSet(StringComparer.Ordinal));
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: the {moved.Count} instances of {string.Join(", ", lost)} Ready elsewhere");

            var scaled = perService + Math.Max(1, perService / 10);
            foreach (var (name, tenant, _) in services)
            {
                await clients[tenant].ScaleAsync(name, "job", scaled);
            }

            ready = await WaitAllReadyAsync(cluster, Services * scaled, "every instance after scaling by 10%", i => !lost.Contains(i.Node));
            Assert.All(services, s => Assert.Equal(scaled, ready.Count(i => i.Service == s.Name)));
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: scaled to {ready.Count} instances");

            foreach (var (name, tenant, _) in services)
            {
                await clients[tenant].DeleteServiceAsync(name);
            }

            await Poll.UntilAsync(async () => (await cluster.Api.ListServicesAsync()).Count + (await cluster.Api.ListInstancesAsync()).Count, n => n == 0, Deadline,
                "no service and no instance left", TimeSpan.FromMilliseconds(500));
            await Poll.UntilAsync(() => Task.FromResult(hollow.Counts()), c => c.Total == 0, Deadline, "no instance left on any hollow node", TimeSpan.FromMilliseconds(500));
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: everything deleted");
        }
        finally
        {
            foreach (var client in clients.Values)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>Waits until exactly <paramref name="count"/> instances exist and all are Ready (and each meets <paramref name="where"/>).</summary>
    private static async Task<List<InstanceStatus>> WaitAllReadyAsync(TestCluster cluster, int count, string what, Func<InstanceStatus, bool>? where = null)
    {
        var seen = await Poll.UntilAsync(async () => new Seen(await cluster.Api.ListInstancesAsync()),
            s => s.All.Count == count && s.All.All(i => i.State == InstanceStates.Ready && (where?.Invoke(i) ?? true)),
            Deadline, what, TimeSpan.FromMilliseconds(500));
        return seen.All;
    }

    /// <summary>Instances as a failure message shows them: counted by state, not listed.</summary>
    private sealed record Seen(List<InstanceStatus> All)
    {
        public override string ToString() => $"{All.Count} instances: " + string.Join(", ", All.GroupBy(i => i.State).Select(g => $"{g.Count()} {g.Key}"));
    }

    private static string Package(TempDirectory work, string name, int cores) => TestPackages.Build(work, name, $$"""
        name: {{name}}
        roles:
          job:
            entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
            size: { cores: {{cores}}, memoryMiB: 64 }
            endpoints:
              peer: { kind: internal, protocol: tcp }
        """);

    private static string Configuration(string name, int instances) => $"service: {name}\nroles:\n  job: {{ instances: {instances} }}\n";
}
