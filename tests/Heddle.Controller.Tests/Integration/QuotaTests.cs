using System.Net;
using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Controller.Tests.Integration;

/// <summary>
/// Tenant quotas on a real controller: a deploy, scale or staging slot past a tenant's quota is refused with a sentence
/// naming the quota and what is in use, and nothing is taken (no service, no VIP, no instance); an admin raises the
/// quota and the same deploy passes; a tenant reads its own quota and cannot change it.
/// </summary>
[Collection(nameof(ClusterCollection))]
public sealed class QuotaTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static string Service(string name) => $$"""
        name: {{name}}
        roles:
          web:
            entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
            size: { cores: 1, memoryMiB: 64, diskMiB: 512 }
            endpoints: { http: { kind: input, protocol: tcp, port: 8080 } }
        """;

    private static string Configuration(string name, int instances) => $"service: {name}\nroles:\n  web: {{ instances: {instances} }}\n";

    private static async Task<string> UploadAsync(HeddleApiClient api, TempDirectory work, string name) =>
        (await api.UploadPackageAsync(TestPackages.Build(work, name, Service(name)))).Sha256;

    [Fact]
    public async Task Deploy_PastATenantsQuota_IsRefusedWithNothingTaken_UntilAnAdminRaisesIt()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, coresPerNode: 4, containers: false);
        using var work = new TempDirectory("heddle-quota-");
        var store = cluster.Controller.Services.GetRequiredService<IClusterStore>();
        await cluster.Api.SetQuotaAsync("alice", new QuotaLimits(Cores: 3, Instances: 3, Vips: 1));
        using var alice = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token);
        await alice.DeployAsync(new DeploymentRequest(await UploadAsync(alice, work, "first"), Configuration("first", 2)));
        await Poll.UntilAsync(() => alice.GetServiceAsync("first"), s => s.Instances.Count(i => i.State != InstanceStates.Unplaced) == 2, Deadline, "both instances of first placed");
        var second = await UploadAsync(alice, work, "second");

        var refused = await Assert.ThrowsAsync<HeddleApiException>(() => alice.DeployAsync(new DeploymentRequest(second, Configuration("second", 2))));

        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Equal(ProblemTypes.QuotaExceeded, refused.Type);
        Assert.StartsWith("tenant alice's quota allows 3 cores; 2 are in use and this deploy needs 2 more; and it allows 3 instances; 2 are in use and this deploy needs 2 more; "
            + "and it allows 1 VIP; 1 is in use and this deploy needs 1 more; nothing was changed", refused.Message);
        var scaled = await Assert.ThrowsAsync<HeddleApiException>(() => alice.ScaleAsync("first", "web", 4));
        Assert.Contains("quota allows 3 cores; 2 are in use and this scale needs 2 more", scaled.Message);
        var staged = await Assert.ThrowsAsync<HeddleApiException>(() => alice.DeployAsync(new DeploymentRequest(store.GetService("first")!.PackageSha256, Configuration("first", 1), Slot: Slots.Staging)));
        Assert.Contains("quota allows 1 VIP; 1 is in use and this deploy needs 1 more", staged.Message);
        Assert.Equal(["first"], store.ListServices().Select(s => s.Name));
        Assert.Equal(1, store.GetService("first")!.Revision);
        Assert.Single(store.ListVips());
        Assert.Equal(2, store.ListInstances().Count);

        var own = await alice.GetQuotaAsync("alice");
        Assert.Equal((new QuotaUsage(2, 2, 1, 1024), QuotaSources.Set), (own.Used, own.Source));
        Assert.Equal(["alice"], (await alice.ListQuotasAsync()).Select(q => q.Tenant));
        var setOwn = await Assert.ThrowsAsync<HeddleApiException>(() => alice.SetQuotaAsync("alice", QuotaLimits.Unlimited));
        Assert.Equal(HttpStatusCode.Forbidden, setOwn.Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<HeddleApiException>(() => alice.ResetQuotaAsync("alice"))).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<HeddleApiException>(() => alice.GetQuotaAsync("bob"))).Status);
        Assert.Equal(new QuotaLimits(Cores: 3, Instances: 3, Vips: 1), (await cluster.Api.GetQuotaAsync("alice")).Limits);

        await cluster.Api.SetQuotaAsync("alice", new QuotaLimits(Cores: 4, Instances: 4, Vips: 2));
        await alice.DeployAsync(new DeploymentRequest(second, Configuration("second", 2)));

        await Poll.UntilAsync(() => alice.ListInstancesAsync(), i => i.Count(x => x.State != InstanceStates.Unplaced) == 4, Deadline, "four instances of alice placed");
        Assert.Equal(2, store.ListVips().Count);
        Assert.Equal(new QuotaUsage(4, 4, 2, 2048), (await alice.GetQuotaAsync("alice")).Used);
        await alice.ScaleAsync("first", "web", 1);
        Assert.Equal(3, (await cluster.Api.GetQuotaAsync("alice")).Used.Cores);
    }

    [Fact]
    public async Task Deploy_ByANewTenant_HasTheDefaultQuota_RefusalsHoldNoVip_AndTheAdminsTenantHasNone()
    {
        using var state = new TempDirectory("heddle-quota-default-");
        await using var controller = await ControllerHost.StartAsync(new ControllerOptions
        {
            StateDirectory = state.Combine("controller"), DefaultQuota = QuotaLimits.NewTenantDefault with { Vips = 2, Instances = 3 },
        });
        var store = controller.Services.GetRequiredService<IClusterStore>();
        using var admin = controller.Client();
        using var alice = controller.Client((await admin.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token);
        var packages = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            packages.Add(await UploadAsync(alice, state, $"s{i}"));
        }

        await Assert.ThrowsAsync<HeddleApiException>(() => alice.DeployAsync(new DeploymentRequest(packages[0], "service: s0\nroles:\n  web: { instances: 0 }\n")));
        await Assert.ThrowsAsync<HeddleApiException>(() => alice.DeployAsync(new DeploymentRequest(packages[0], "service: s0\nroles:\n  wbe: { instances: 1 }\n")));
        var boxed = (await alice.UploadPackageAsync(TestPackages.Build(state, "boxed", Service("boxed").Replace("entryPoint:", "driver: container\n    image: nowhere\n    entryPoint:")))).Sha256;
        var noImage = await Assert.ThrowsAsync<HeddleApiException>(() => alice.DeployAsync(new DeploymentRequest(boxed, Configuration("boxed", 1))));
        Assert.Equal(ProblemTypes.ImageMissing, noImage.Type);
        Assert.Empty(store.ListVips());
        Assert.Empty(store.ListServices());

        // No node can take any of them (there is none): each accepted one holds a VIP and its instances all the same, so the quota bounds them.
        await alice.DeployAsync(new DeploymentRequest(packages[0], Configuration("s0", 1)));
        await alice.DeployAsync(new DeploymentRequest(packages[1], Configuration("s1", 1)));
        var third = await Assert.ThrowsAsync<HeddleApiException>(() => alice.DeployAsync(new DeploymentRequest(packages[2], Configuration("s2", 1))));
        var many = await Assert.ThrowsAsync<HeddleApiException>(() => alice.ScaleAsync("s0", "web", 1000));

        Assert.StartsWith("tenant alice's quota allows 2 VIPs; 2 are in use and this deploy needs 1 more; nothing was changed", third.Message);
        Assert.StartsWith("tenant alice's quota allows 64 cores; 2 are in use and this scale needs 999 more; and it allows 3 instances; 2 are in use and this scale needs 999 more; "
            + "and it allows 262,144 MiB of disk; 1,024 MiB are in use and this scale needs 511,488 MiB more; nothing was changed", many.Message);
        Assert.Equal(2, store.ListVips().Count);
        Assert.Equal(QuotaSources.Default, (await alice.GetQuotaAsync("alice")).Source);
        for (var i = 2; i < 5; i++)
        {
            await admin.DeployAsync(new DeploymentRequest(packages[i], Configuration($"s{i}", 10)));
        }

        var mine = await admin.GetQuotaAsync("default");
        Assert.Equal((QuotaLimits.Unlimited, QuotaSources.AdminTenant, 3L), (mine.Limits, mine.Source, mine.Used.Vips));
        Assert.Equal(["alice", "default"], (await admin.ListQuotasAsync()).Select(q => q.Tenant));
        Assert.Equal(5, store.ListVips().Count);
    }
}
