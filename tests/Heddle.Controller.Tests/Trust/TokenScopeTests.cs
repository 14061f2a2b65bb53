using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Heddle.Contracts.Api;
using Heddle.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Heddle.Controller.Tests.Trust;

/// <summary>
/// Every REST route, called with no token, a wrong token, another tenant's token, the owning tenant's token and an
/// admin token: another tenant's service is 404 (its name does not leak), cluster-wide operations are 403 to tenants,
/// a tenant reads its own quota only and sets none, and the tenant of a deploy comes from the token.
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class TokenScopeTests(ITestOutputHelper output)
{
    private const int Skip = 0;

    [Fact]
    public async Task EveryRoute_WithEachKindOfToken_AnswersAsItsScopeAllows()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        var contoso = (await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "contoso"))).Token;
        var fabrikam = (await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "fabrikam"))).Token;
        using (var owner = cluster.Controller.Client(contoso))
        {
            var upload = await owner.UploadPackageAsync(SamplePackage.File);
            await owner.DeployAsync(new DeploymentRequest(upload.Sha256, File.ReadAllText(SamplePackage.ConfigurationPath)));
        }

        var ready = await Poll.UntilAsync(() => cluster.Api.GetServiceAsync("hello"), s => s.Instances.Any(i => i.State == "Ready"), TimeSpan.FromSeconds(60), "an instance of hello Ready");
        Assert.Equal("contoso", ready.Tenant);
        var instance = ready.Instances.First(i => i.State == "Ready");
        var sha = ready.PackageSha256;
        var package = await File.ReadAllBytesAsync(SamplePackage.File);
        var deploy = Json(new DeploymentRequest(sha, File.ReadAllText(SamplePackage.ConfigurationPath)));
        var callers = new (string Name, string? Token)[]
        {
            ("no token", null), ("a wrong token", "0123456789abcdef0123456789abcdef01234567"), ("fabrikam's token", fabrikam), ("contoso's token", contoso), ("the admin token", cluster.Controller.ApiToken),
        };

        // Expected status for: no token, wrong token, other tenant, owning tenant, admin.
        var routes = new (string Method, string Path, Func<HttpContent?> Body, int[] Expected)[]
        {
            ("GET", "v1/info", None, [401, 401, 200, 200, 200]),
            ("GET", "v1/services", None, [401, 401, 200, 200, 200]),
            ("GET", "v1/services/hello", None, [401, 401, 404, 200, 200]),
            ("GET", "v1/services/hello?slot=staging", None, [401, 401, 404, 404, 404]),
            ("GET", "v1/services/hello/revisions", None, [401, 401, 404, 200, 200]),
            ("GET", "v1/services/hello/upgrade", None, [401, 401, 404, 404, 404]),
            ("GET", "v1/instances?service=hello", None, [401, 401, 404, 200, 200]),
            ("GET", "v1/instances", None, [401, 401, 200, 200, 200]),
            ("GET", $"v1/services/hello/roles/{instance.Role}/instances/{instance.Index}/logs?tail=1", None, [401, 401, 404, 200, 200]),
            ("GET", "v1/events", None, [401, 401, 200, 200, 200]),
            ("PUT", $"v1/packages/{sha}", () => new ByteArrayContent(package), [401, 401, 200, 200, 200]),
            ("GET", $"v1/packages/{sha}/content", None, [401, 401, 403, 403, 200]),
            ("POST", "v1/deployments", () => deploy(), [401, 401, 409, 202, 202]),
            ("POST", "v1/services/hello/scale", () => Json(new ScaleRequest("web", 2))(), [401, 401, 404, 202, 202]),
            ("POST", "v1/services/hello/upgrade/pause", None, [401, 401, 404, 409, 409]),
            ("POST", "v1/services/hello/swap", None, [401, 401, 404, 409, 409]),
            ("GET", "v1/images", None, [401, 401, 200, 200, 200]),
            ("DELETE", "v1/images/nope", None, [401, 401, 404, 404, 404]),
            ("GET", "v1/nodes", None, [401, 401, 403, 403, 200]),
            ("DELETE", "v1/nodes/nope", None, [401, 401, 403, 403, 404]),
            ("GET", "v1/tokens", None, [401, 401, 403, 403, 200]),
            ("POST", "v1/tokens", () => Json(new TokenCreateRequest(Tenant: "someone"))(), [401, 401, 403, 403, 200]),
            ("DELETE", "v1/tokens/zzzzzz", None, [401, 401, 403, 403, 404]),
            ("GET", "v1/quotas", None, [401, 401, 200, 200, 200]),
            ("GET", "v1/quotas/contoso", None, [401, 401, 403, 200, 200]),
            ("PUT", "v1/quotas/contoso", () => Json(QuotaLimits.NewTenantDefault)(), [401, 401, 403, 403, 200]),
            ("DELETE", "v1/quotas/contoso", None, [401, 401, 403, 403, 200]),
            ("GET", "v1/dns/records", None, [401, 401, 403, 403, 200]),
            ("GET", "v1/lb/config", None, [401, 401, 403, 403, 200]),
            ("POST", "v1/lb/heartbeat", () => Json(new BalancerHeartbeat("test", "1", "127.0.0.1", "none", null, true, "", [], 0, []))(), [401, 401, 403, 403, 200]),
            ("GET", "v1/lb/balancers", None, [401, 401, 403, 403, 200]),
            ("DELETE", "v1/lb/balancers/nope", None, [401, 401, 403, 403, 404]),
            ("DELETE", "v1/services/hello?slot=staging", None, [401, 401, 404, 404, 404]),
            ("DELETE", "v1/services/hello", None, [401, 401, 404, 202, 202]),
        };

        using var http = cluster.Controller.Http();
        var wrong = new List<string>();
        foreach (var (method, path, body, expected) in routes)
        {
            for (var c = 0; c < callers.Length; c++)
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = body() };
                if (callers[c].Token is { } token)
                {
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                }

                using var response = await http.SendAsync(request);
                var text = await response.Content.ReadAsStringAsync();
                if (expected[c] != Skip && (int)response.StatusCode != expected[c])
                {
                    wrong.Add($"{method} {path} with {callers[c].Name}: {(int)response.StatusCode}, expected {expected[c]}: {text[..Math.Min(200, text.Length)]}");
                }

                // Whatever fabrikam is told, it never learns that contoso's hello exists (except that its name is taken; a package it uploads names its own service).
                if (c == 2 && !path.StartsWith("v1/deployments", StringComparison.Ordinal) && !path.StartsWith("v1/packages", StringComparison.Ordinal) && text.Contains("hello", StringComparison.Ordinal) && !path.Contains("hello", StringComparison.Ordinal))
                {
                    wrong.Add($"{method} {path} with fabrikam's token mentions hello: {text[..Math.Min(300, text.Length)]}");
                }
            }
        }

        output.WriteLine($"{routes.Length} routes × {callers.Length} callers");
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public async Task TheTenantComesFromTheToken_ANameTakenByAnotherTenantIsRefused_AndTenantNamesFollowTheServiceNameRule()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var contoso = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "contoso"))).Token);
        using var fabrikam = cluster.Controller.Client((await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "fabrikam"))).Token);
        var sha = (await contoso.UploadPackageAsync(SamplePackage.File)).Sha256;
        var configuration = File.ReadAllText(SamplePackage.ConfigurationPath);

        var claimed = await Assert.ThrowsAsync<HeddleApiException>(() => contoso.DeployAsync(new DeploymentRequest(sha, configuration, Tenant: "fabrikam")));
        Assert.Equal(HttpStatusCode.Forbidden, claimed.Status);
        Assert.Empty(await cluster.Api.ListServicesAsync());

        await contoso.DeployAsync(new DeploymentRequest(sha, configuration));
        Assert.Equal("contoso", (await cluster.Api.GetServiceAsync("hello")).Tenant);

        // Deploying bytes it has not uploaded itself is refused as an unknown package; uploaded, the name is still contoso's.
        var notUploaded = await Assert.ThrowsAsync<HeddleApiException>(() => fabrikam.DeployAsync(new DeploymentRequest(sha, configuration)));
        Assert.Equal(HttpStatusCode.BadRequest, notUploaded.Status);
        Assert.Equal(sha, (await fabrikam.UploadPackageAsync(SamplePackage.File)).Sha256);
        var taken = await Assert.ThrowsAsync<HeddleApiException>(() => fabrikam.DeployAsync(new DeploymentRequest(sha, configuration)));
        Assert.Equal(HttpStatusCode.Conflict, taken.Status);
        Assert.Contains("taken by another tenant", taken.Message);
        var byAdmin = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.DeployAsync(new DeploymentRequest(sha, configuration, Tenant: "evil")));
        Assert.Equal(HttpStatusCode.Conflict, byAdmin.Status);
        Assert.Equal("contoso", (await cluster.Api.GetServiceAsync("hello")).Tenant);
        Assert.Equal(1, (await cluster.Api.GetServiceAsync("hello")).Revision);

        foreach (var bad in new[] { "Evil", "evil\u0007", "-x", new string('a', 64), "a b" })
        {
            var e = await Assert.ThrowsAsync<HeddleApiException>(() => cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: bad)));
            Assert.Equal(HttpStatusCode.BadRequest, e.Status);
            Assert.Contains("not a tenant name", e.Message);
            Assert.DoesNotContain("\u0007", e.Message);
        }

        Assert.Empty(await fabrikam.ListServicesAsync());
        Assert.DoesNotContain(await fabrikam.ListEventsAsync(), e => e.Subject.StartsWith("hello", StringComparison.Ordinal));
        Assert.Contains(await contoso.ListEventsAsync(), e => e.Subject == "hello" && e.Kind == "DeploymentAccepted");
        Assert.DoesNotContain(await contoso.ListEventsAsync(), e => e.Kind == "NodeJoined");
    }

    [Fact]
    public async Task TokensAreShownOnce_StoredHashed_AndRevokedOrExpiredTokensAreRefused()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        var made = await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "contoso", Description: "ci"));
        using var client = cluster.Controller.Client(made.Token);
        Assert.Empty(await client.ListServicesAsync());

        var listed = await cluster.Api.ListTokensAsync();
        Assert.Contains(listed, t => t.Id == made.Id && t.Scope == "tenant contoso" && !t.Revoked);
        Assert.DoesNotContain(made.Token, JsonText(listed));
        Assert.DoesNotContain(made.Token, Encoding.Latin1.GetString(File.ReadAllBytes(Path.Combine(cluster.StateDirectory, "controller", "cluster.db"))));

        await cluster.Api.RevokeTokenAsync(made.Id[..6]);
        var refused = await Assert.ThrowsAsync<HeddleApiException>(() => client.ListServicesAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);

        var brief = await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "contoso", TtlSeconds: 1));
        using var briefClient = cluster.Controller.Client(brief.Token);
        await Poll.UntilAsync(async () =>
        {
            try
            {
                await briefClient.ListServicesAsync();
                return false;
            }
            catch (HeddleApiException e) when (e.Status == HttpStatusCode.Unauthorized)
            {
                return true;
            }
        }, x => x, TimeSpan.FromSeconds(10), "the 1 s token refused");

        var once = await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Join: true, Uses: 1));
        Assert.StartsWith("hjoin.", once.JoinString);
        Assert.Equal("join", once.Kind);
    }

    private static HttpContent? None() => null;

    private static Func<HttpContent> Json<T>(T value) => () => System.Net.Http.Json.JsonContent.Create(value, options: HeddleApiClient.Json);

    private static string JsonText<T>(T value) => System.Text.Json.JsonSerializer.Serialize(value, HeddleApiClient.Json);
}
