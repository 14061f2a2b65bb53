using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Hostile;

/// <summary>
/// One uid per service for the whole cluster, chosen by the controller: instances of one service on three agents
/// of one host share it, two services never do, and a second cluster running on the same host hands out others.
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class ServiceUidTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static async Task<HashSet<int>> UidsOfAsync(TestCluster cluster, string service, int count)
    {
        var status = await cluster.WaitUntilReadyAsync(service, count, Deadline);
        // An instance without a probe is Ready once started; its launch may still be in its root steps for a moment.
        var pids = status.Instances.Select(i => i.Pid).ToList();
        await Poll.UntilAsync(() => pids.All(p => UidOf(p) != 0), Deadline, $"every instance of {service} past its launch's root steps");
        return pids.Select(UidOf).ToHashSet();
    }

    private static int UidOf(int pid) =>
        int.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);

    private static async Task DeploySleeperAsync(TestCluster cluster, string name)
    {
        using var work = new TempDirectory();
        var package = TestPackages.Build(work, name, $$"""
            name: {{name}}
            roles:
              sleeper:
                entryPoint: { command: /bin/sleep, args: ["600"] }
                size: { cores: 1, memoryMiB: 32, diskMiB: 32 }
            """);
        var upload = await cluster.Api.UploadPackageAsync(package);
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, $"service: {name}\nroles:\n  sleeper: {{ instances: 3 }}\n"));
    }

    [Fact]
    public async Task TwoServicesOnThreeAgents_EachHasOneUidEverywhere_AndASecondClusterUsesOthers()
    {
        Assert.True(Heddle.Agent.Drivers.Posix.IsRoot, "the isolation tests run as root, as CI does");
        await using var first = await TestCluster.StartAsync(nodes: 3, coresPerNode: 3);
        await using var second = await TestCluster.StartAsync(nodes: 2, coresPerNode: 2);
        await DeploySleeperAsync(first, "alpha");
        await DeploySleeperAsync(first, "beta");
        await DeploySleeperAsync(second, "alpha");

        var alpha = await UidsOfAsync(first, "alpha", 3);
        var beta = await UidsOfAsync(first, "beta", 3);
        var otherAlpha = await UidsOfAsync(second, "alpha", 3);

        Assert.Single(alpha);
        Assert.Single(beta);
        Assert.Single(otherAlpha);
        Assert.True((await first.Api.GetServiceAsync("alpha")).Instances.Select(i => i.Node).Distinct().Count() > 1, "alpha should span agents");
        Assert.NotEqual(alpha.Single(), beta.Single());
        Assert.DoesNotContain(otherAlpha.Single(), alpha.Concat(beta));
        Assert.All(alpha.Concat(beta), uid => Assert.True(first.ControllerOptions.UidRange.Contains(uid), $"uid {uid} outside {first.ControllerOptions.UidRange}"));

        // A second deployment of the service (a scale) keeps its uid: the new instance runs as the others do.
        await first.Api.ScaleAsync("alpha", "sleeper", 4);
        Assert.Equal(alpha, await UidsOfAsync(first, "alpha", 4));
    }
}
