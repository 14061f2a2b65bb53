using System.Net;
using Heddle.Contracts.Api;
using Heddle.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Trust;

/// <summary>
/// Image names are per tenant: the admin's images are shared (every tenant sees and uses them, none can write or
/// delete them, nor take their names), a tenant's own are seen and used by it alone; the same name in two tenants is
/// two images.
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class TenantImageTests
{
    [Fact]
    public async Task Images_OfEachTenantAndShared_AreSeenWrittenAndUsedOnlyAsTheirNamespaceAllows()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var work = new TempDirectory("heddle-images-");
        using var alice = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token);
        using var bob = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "bob"))).Token);
        var tar = TestImages.Tar();

        await cluster.Api.UploadImageAsync("debian-12", tar);
        await alice.UploadImageAsync("myimg", tar);
        await bob.UploadImageAsync("myimg", tar);
        await alice.UploadImageAsync("alices", tar);

        Assert.Equal(["alices alice", "debian-12 shared", "myimg alice"], Names(await alice.ListImagesAsync()));
        Assert.Equal(["debian-12 shared", "myimg bob"], Names(await bob.ListImagesAsync()));
        Assert.Equal(["alices alice", "debian-12 shared", "myimg alice", "myimg bob"], Names(await cluster.Api.ListImagesAsync()));

        var taken = await Assert.ThrowsAsync<HeddleApiException>(() => alice.UploadImageAsync("debian-12", tar));
        Assert.Equal(HttpStatusCode.Conflict, taken.Status);
        Assert.Contains("shared image's name", taken.Message);
        var shared = await Assert.ThrowsAsync<HeddleApiException>(() => alice.DeleteImageAsync("debian-12"));
        Assert.Equal(HttpStatusCode.Forbidden, shared.Status);
        var others = await Assert.ThrowsAsync<HeddleApiException>(() => bob.DeleteImageAsync("alices"));
        var nobodys = await Assert.ThrowsAsync<HeddleApiException>(() => bob.DeleteImageAsync("nobodys"));
        Assert.Equal((HttpStatusCode.NotFound, HttpStatusCode.NotFound), (others.Status, nobodys.Status));
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<HeddleApiException>(() => bob.DeleteImageAsync("alices", tenant: "alice"))).Status);
        Assert.Equal(nobodys.Message, others.Message.Replace("alices", "nobodys", StringComparison.Ordinal));

        // A role's image: the tenant's own first, then the shared one; another tenant's is unknown, as a name nobody has.
        Assert.Equal(202, await DeployAsync(alice, work, "alicebox", "alices"));
        Assert.Equal(202, await DeployAsync(alice, work, "aliceshared", "debian-12"));
        var refused = await Assert.ThrowsAsync<HeddleApiException>(() => DeployAsync(bob, work, "bobbox", "alices"));
        var unknown = await Assert.ThrowsAsync<HeddleApiException>(() => DeployAsync(bob, work, "bobbox2", "nobodys"));
        Assert.Equal((unknown.Status, unknown.Type), (refused.Status, refused.Type));
        Assert.Equal(ProblemTypes.ImageMissing, refused.Type);

        // The admin adds a shared image under a name a tenant already has: that tenant keeps its own, others get the shared one.
        await cluster.Api.UploadImageAsync("alices", tar);
        Assert.Equal(202, await DeployAsync(bob, work, "bobbox3", "alices"));
        Assert.Equal(["alices alice", "alices shared", "debian-12 shared", "myimg alice"], Names(await alice.ListImagesAsync()));

        // Deleting is per namespace: bob's myimg goes, alice's stays; the admin deletes a tenant's by naming it.
        await bob.DeleteImageAsync("myimg");
        Assert.Equal(["debian-12 shared"], Names(await bob.ListImagesAsync()).Where(n => !n.StartsWith("alices", StringComparison.Ordinal)));
        Assert.Contains("myimg alice", Names(await alice.ListImagesAsync()));
        await cluster.Api.DeleteImageAsync("myimg", tenant: "alice");
        Assert.DoesNotContain(Names(await cluster.Api.ListImagesAsync()), n => n.StartsWith("myimg", StringComparison.Ordinal));
    }

    private static List<string> Names(List<ImageStatus> images) => [.. images.Select(i => $"{i.Name} {i.Tenant ?? "shared"}").Order(StringComparer.Ordinal)];

    /// <summary>Uploads and deploys a one-container service in the image; the status of the accepted deploy.</summary>
    private static async Task<int> DeployAsync(HeddleApiClient client, TempDirectory work, string name, string image)
    {
        var package = TestPackages.Build(work, name, $$"""
            name: {{name}}
            roles:
              box:
                driver: container
                image: {{image}}
                entryPoint: { command: /bin/sleep, args: ["600"] }
                size: { cores: 1, memoryMiB: 64 }
            """);
        var upload = await client.UploadPackageAsync(package);
        await client.DeployAsync(new DeploymentRequest(upload.Sha256, $"service: {name}\nroles:\n  box: {{ instances: 1 }}\n"));
        return 202;
    }
}
