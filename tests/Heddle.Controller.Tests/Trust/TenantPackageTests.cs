using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Model.Packages;
using Heddle.Model.Validation;
using Heddle.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Trust;

/// <summary>
/// Packages are their uploaders': a tenant that did not upload a hash itself can neither probe nor deploy it, and
/// is answered exactly as for a hash nobody uploaded; a service name the DNS zone uses itself is refused (HD1019).
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class TenantPackageTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task PutPackageAndDeploy_OfAnotherTenantsHash_AnswerAsForAHashNobodyUploaded()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var work = new TempDirectory("heddle-packages-");
        var aliceToken = (await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token;
        var bobToken = (await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "bob"))).Token;
        using var alice = cluster.Controller.Client(aliceToken);
        using var bob = cluster.Controller.Client(bobToken);
        var package = TestPackages.Build(work, "bobsecret", """
            name: bobsecret
            roles:
              job:
                entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
                size: { cores: 1, memoryMiB: 64 }
            """);
        var bobs = (await bob.UploadPackageAsync(package)).Sha256;
        await bob.DeployAsync(new DeploymentRequest(bobs, "service: bobsecret\nroles:\n  job: { instances: 1 }\n"));
        await cluster.WaitUntilReadyAsync("bobsecret", 1, Deadline);
        var nobodys = Sha256Hex.Of("bytes nobody uploaded"u8);

        var probed = await ProbeAsync(cluster, aliceToken, bobs);
        var unknownProbe = await ProbeAsync(cluster, aliceToken, nobodys);
        var deployed = await Assert.ThrowsAsync<HeddleApiException>(() => alice.DeployAsync(new DeploymentRequest(bobs, "service: bobsecret\nroles:\n  job: { instances: 1 }\n")));
        var unknownDeploy = await Assert.ThrowsAsync<HeddleApiException>(() => alice.DeployAsync(new DeploymentRequest(nobodys, "service: bobsecret\nroles:\n  job: { instances: 1 }\n")));

        Assert.Equal(HttpStatusCode.BadRequest, probed.Status);
        Assert.Equal(unknownProbe.Status, probed.Status);
        Assert.Equal(unknownProbe.Problem, probed.Problem.Replace(bobs, nobodys, StringComparison.Ordinal));
        Assert.DoesNotContain("bobsecret", probed.Problem, StringComparison.Ordinal);
        Assert.Equal((unknownDeploy.Status, unknownDeploy.Type, unknownDeploy.Message), (deployed.Status, deployed.Type, deployed.Message.Replace(bobs, nobodys, StringComparison.Ordinal)));
        Assert.DoesNotContain("bob", deployed.Message, StringComparison.Ordinal);
        Assert.Empty(await alice.ListServicesAsync());
        Assert.Equal(HttpStatusCode.OK, (await ProbeAsync(cluster, bobToken, bobs)).Status);

        // The same bytes uploaded by alice herself are hers too (stored once): from then on her probe finds them.
        var hers = await alice.UploadPackageAsync(package);
        Assert.Equal((bobs, false), (hers.Sha256, hers.AlreadyPresent));
        Assert.Equal(HttpStatusCode.OK, (await ProbeAsync(cluster, aliceToken, bobs)).Status);
        Assert.Single(Directory.GetFiles(Path.Combine(cluster.StateDirectory, "controller"), bobs, SearchOption.AllDirectories));
    }

    [Fact]
    public async Task PutPackage_OfAServiceNamedLikeAZoneLabel_IsRefusedWithHD1019()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var alice = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token);
        using var work = new TempDirectory("heddle-packages-");
        foreach (var label in ZoneLabels.Reserved)
        {
            // Written without `heddle pack`, which refuses the name before any upload.
            var path = work.Combine($"{label}.hpkg");
            await using (var file = File.Create(path))
            {
                var yaml = $"name: {label}\nroles:\n  job:\n    entryPoint: {{ command: /bin/true }}\n";
                PackageWriter.Write(label, [new PackageSourceFile("service.yaml", false, () => new MemoryStream(System.Text.Encoding.UTF8.GetBytes(yaml)))], file);
            }

            var refused = await Assert.ThrowsAsync<HeddleApiException>(() => alice.UploadPackageAsync(path));

            Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
            Assert.Contains(refused.Errors, e => e.Contains("HD1019", StringComparison.Ordinal) && e.Contains($"'{label}' is reserved", StringComparison.Ordinal));
        }

        Assert.Empty(await cluster.Api.ListServicesAsync());
    }

    /// <summary>An upload probe: PUT with an empty body. The status, and the problem's type, title, detail and errors as one line.</summary>
    private static async Task<(HttpStatusCode Status, string Problem)> ProbeAsync(TestCluster cluster, string token, string sha256)
    {
        using var http = cluster.Controller.Http();
        using var request = new HttpRequestMessage(HttpMethod.Put, $"v1/packages/{sha256}") { Content = new ByteArrayContent([]) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            using var problem = JsonDocument.Parse(text);
            var root = problem.RootElement;
            string Field(string name) => root.TryGetProperty(name, out var value) ? value.ToString() : "-";
            text = $"{Field("type")} | {Field("title")} | {Field("detail")} | {Field("errors")}";
        }

        return (response.StatusCode, text);
    }
}
