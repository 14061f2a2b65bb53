using Heddle.Contracts.Api;
using Heddle.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Trust;

/// <summary>
/// An event is its tenant's and its service incarnation's, fixed when it is written: a name deleted by one tenant and
/// taken by another, or a service named like a node, hands no history over, in the list or followed live.
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class TenantEventTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task ListEvents_AfterBobDeletesLeakAndAliceDeploysHers_AliceSeesNoneOfBobs()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var work = new TempDirectory("heddle-events-");
        using var alice = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token);
        using var bob = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "bob"))).Token);
        var package = Sleeper(work, "leak");

        await DeployAsync(bob, package, "leak");
        await cluster.WaitUntilReadyAsync("leak", 1, Deadline);
        await bob.DeleteServiceAsync("leak");
        await Poll.UntilAsync(() => cluster.Api.ListEventsAsync(), e => e.Any(x => x.Kind == nameof(EventKind.ServiceDeleted) && x.Subject == "leak"), Deadline, "bob's leak deleted");
        var bobs = (await cluster.Api.ListEventsAsync()).Where(e => e.Tenant == "bob").ToList();

        using var following = new CancellationTokenSource(Deadline);
        var followed = FollowUntilReadyAsync(alice, "leak/", following.Token);
        await DeployAsync(alice, package, "leak");
        await cluster.WaitUntilReadyAsync("leak", 1, Deadline);
        var live = await followed;
        var listed = await alice.ListEventsAsync();

        Assert.Contains(bobs, e => e.Kind == nameof(EventKind.DeploymentAccepted) && e.Subject == "leak");
        Assert.Contains(bobs, e => e.Kind == nameof(EventKind.InstanceState) && e.Subject == "leak/job/0");
        Assert.Single(bobs.Select(e => e.Incarnation).Distinct());
        Assert.Contains(listed, e => e.Kind == nameof(EventKind.DeploymentAccepted) && e.Subject == "leak");
        foreach (var seen in new[] { listed, live })
        {
            Assert.All(seen, e => Assert.Equal("alice", e.Tenant));
            Assert.DoesNotContain(seen, e => bobs.Any(b => b.Id == e.Id) || e.Incarnation == bobs[0].Incarnation);
        }

        Assert.Single(listed.Select(e => e.Incarnation).Distinct());
        Assert.DoesNotContain(await bob.ListEventsAsync(), e => e.Tenant != "bob");
    }

    [Fact]
    public async Task ListEvents_OfAServiceNamedLikeANode_ShowsNoNodeEvents()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var work = new TempDirectory("heddle-events-");
        using var alice = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token);
        var node = TestCluster.NodeName(0);

        using var following = new CancellationTokenSource(Deadline);
        var followed = FollowUntilReadyAsync(alice, $"{node}/", following.Token);
        await DeployAsync(alice, Sleeper(work, node), node);
        await cluster.WaitUntilReadyAsync(node, 1, Deadline);
        var live = await followed;
        var listed = await alice.ListEventsAsync();

        Assert.Contains(await cluster.Api.ListEventsAsync(), e => e.Kind == nameof(EventKind.NodeJoined) && e.Subject == node && e.Tenant is null);
        Assert.Contains(listed, e => e.Kind == nameof(EventKind.DeploymentAccepted) && e.Subject == node);
        foreach (var seen in new[] { listed, live })
        {
            Assert.DoesNotContain(seen, e => e.Kind.StartsWith("Node", StringComparison.Ordinal) || e.Kind == nameof(EventKind.LeaderElected) || e.Kind.StartsWith("Token", StringComparison.Ordinal));
            Assert.All(seen, e => Assert.Equal("alice", e.Tenant));
        }
    }

    /// <summary>What a tenant's `heddle events -f` shows from the start of the log until one of its instances (ids starting <paramref name="prefix"/>) is Ready.</summary>
    private static async Task<List<EventRecord>> FollowUntilReadyAsync(HeddleApiClient client, string prefix, CancellationToken cancellationToken)
    {
        var seen = new List<EventRecord>();
        await foreach (var e in client.FollowEventsAsync(0, cancellationToken))
        {
            seen.Add(e);
            if (e.Kind == nameof(EventKind.InstanceState) && e.Subject.StartsWith(prefix, StringComparison.Ordinal) && e.Message.StartsWith(InstanceStates.Ready, StringComparison.Ordinal))
            {
                return seen;
            }
        }

        return seen;
    }

    private static async Task DeployAsync(HeddleApiClient client, string package, string name)
    {
        var upload = await client.UploadPackageAsync(package);
        await client.DeployAsync(new DeploymentRequest(upload.Sha256, $"service: {name}\nroles:\n  job: {{ instances: 1 }}\n"));
    }

    private static string Sleeper(TempDirectory work, string name) => TestPackages.Build(work, name, $$"""
        name: {{name}}
        roles:
          job:
            entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
            size: { cores: 1, memoryMiB: 64 }
        """);
}
