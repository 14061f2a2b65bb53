using System.Net;
using System.Text.RegularExpressions;
using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Dashboard;

/// <summary>
/// The dashboard over real HTTPS, as a browser meets it without running its script: signing in and out, the cookie's
/// flags, what a tenant sees, what is encoded, and the live stream's messages. (The pages in a real browser, with the
/// script, are the end-to-end tests'.)
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed partial class DashboardTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task SignIn_WithAnApiToken_SetsAStrictHttpOnlySecureCookie_AndOnlyAGoodTokenOnlyFromThisSite()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var http = Browser(cluster);

        var first = await http.GetAsync("/services?slot=x");
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        Assert.Equal("/login?next=%2Fservices%3Fslot%3Dx", first.Headers.Location!.OriginalString);

        var bad = await PostFormAsync(http, "/login", ("token", "not-a-token-of-this-cluster-0123456789"), ("next", "/"));
        Assert.Equal(HttpStatusCode.Unauthorized, bad.StatusCode);
        Assert.False(bad.Headers.Contains("Set-Cookie"));
        Assert.Contains("was not accepted", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var foreign = await PostFormAsync(http, "/login", [("token", cluster.Controller.ApiToken)], origin: "https://elsewhere.example");
        Assert.Equal(HttpStatusCode.Forbidden, foreign.StatusCode);
        Assert.False(foreign.Headers.Contains("Set-Cookie"));

        var away = await PostFormAsync(http, "/login", ("token", cluster.Controller.ApiToken), ("next", "//elsewhere.example/x"));
        Assert.Equal("/", away.Headers.Location!.OriginalString); // never sent to another site after signing in

        var good = await PostFormAsync(http, "/login", ("token", cluster.Controller.ApiToken), ("next", "/services"));
        Assert.Equal(HttpStatusCode.Redirect, good.StatusCode);
        Assert.Equal("/services", good.Headers.Location!.OriginalString);
        var cookie = Assert.Single(good.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith("__Host-heddle-token=", cookie, StringComparison.Ordinal);
        foreach (var flag in new[] { "httponly", "secure", "samesite=strict", "path=/" })
        {
            Assert.Contains(flag, cookie.ToLowerInvariant().Split("; "));
        }

        var page = await GetAsync(http, "/services", cookie);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("default-src 'none'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);

        // The cookie is the dashboard's: the API still takes a bearer token only (a form on another site cannot call it).
        Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync(http, "/v1/services", cookie)).StatusCode);

        var signedOut = await PostFormAsync(http, "/logout", [], cookie: cookie);
        Assert.Equal("/login", signedOut.Headers.Location!.OriginalString);
        Assert.Contains("expires=Thu, 01 Jan 1970", signedOut.Headers.GetValues("Set-Cookie").Single(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Pages_OfATenant_ShowItsOwnServicesAndCores_AndOthersOnlyAsTaken_AndARevokedTokenIsSignedOut()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var work = new TempDirectory("heddle-dashboard-");
        var aliceToken = await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"));
        var bobToken = await cluster.Api.CreateTokenAsync(new TokenCreateRequest(Tenant: "bob"));
        using var alice = cluster.Controller.Client(aliceToken.Token);
        using var bob = cluster.Controller.Client(bobToken.Token);
        await DeployAsync(alice, work, "secret");
        await DeployAsync(bob, work, "public");
        await cluster.WaitUntilReadyAsync("secret", 1, Deadline);
        await cluster.WaitUntilReadyAsync("public", 1, Deadline);
        using var http = Browser(cluster);
        var cookie = await SignInAsync(http, bobToken.Token);

        var services = await TextAsync(http, "/services", cookie);
        Assert.Contains("data-service=\"public\"", services, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", services, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(http, "/services/secret", cookie)).StatusCode);

        var clusterPage = await TextAsync(http, "/", cookie);
        var bobs = Cpus(clusterPage).Where(c => c.Instance is not null).ToList();
        Assert.Equal(["public/job/0"], bobs.Select(c => c.Instance));
        Assert.DoesNotContain("secret", clusterPage, StringComparison.Ordinal);
        Assert.Contains("cpu other", clusterPage, StringComparison.Ordinal); // alice's core, unnamed

        var events = await TextAsync(http, "/events", cookie);
        Assert.True(events.Contains("public", StringComparison.Ordinal), events);
        Assert.DoesNotContain("secret", events, StringComparison.Ordinal);
        Assert.Contains("The control plane is an admin", await TextAsync(http, "/control-plane", cookie), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(http, "/ui/logs/secret/job/0?tail=5", cookie)).StatusCode);

        // The admin sees both, each instance on the CPUs the API names.
        var adminCookie = await SignInAsync(http, cluster.Controller.ApiToken);
        var all = Cpus(await TextAsync(http, "/", adminCookie)).Where(c => c.Instance is not null).ToList();
        foreach (var instance in await cluster.Api.ListInstancesAsync())
        {
            Assert.Equal(instance.Cpus.Order(), all.Where(c => c.Instance == instance.Id && c.Node == instance.Node).Select(c => c.Cpu).Order());
        }

        await cluster.Api.RevokeTokenAsync(bobToken.Id);
        var after = await GetAsync(http, "/services", cookie);
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
        Assert.StartsWith("/login", after.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pages_EchoingWhatTheRequestSaid_EncodeIt()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var http = Browser(cluster);
        var cookie = await SignInAsync(http, cluster.Controller.ApiToken);

        var missing = await GetAsync(http, "/services/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", cookie);
        var text = await missing.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.DoesNotContain("<img", text, StringComparison.Ordinal);
        Assert.True(text.Contains("&lt;img src=x onerror=alert(1)&gt;", StringComparison.Ordinal), text);

        var login = await (await http.GetAsync("/login?next=%2F%22%3E%3Cscript%3Ex()%3C%2Fscript%3E")).Content.ReadAsStringAsync();
        Assert.DoesNotContain("<script>x()", login, StringComparison.Ordinal);
        var events = await TextAsync(http, "/events?service=%3Cb%3E&kind=%3Ci%3E", cookie);
        Assert.DoesNotContain("<b>", events, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LiveStream_SaysWhenWhatAPageShowsChanges()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var work = new TempDirectory("heddle-dashboard-");
        using var http = Browser(cluster);
        var cookie = await SignInAsync(http, cluster.Controller.ApiToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/ui/live")).StatusCode);

        var page = await TextAsync(http, "/services", cookie);
        var version = VersionPattern().Match(page).Groups[1].Value;
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/ui/live?v={version}");
        request.Headers.Add("Cookie", cookie);
        using var stream = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", stream.Content.Headers.ContentType!.MediaType);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync());
        Assert.Equal("retry: 1000", await reader.ReadLineAsync());

        await DeployAsync(cluster.Api, work, "ticker");
        using var deadline = new CancellationTokenSource(Deadline);
        string? line;
        while ((line = await reader.ReadLineAsync(deadline.Token)) is not null && !line.StartsWith("event: change", StringComparison.Ordinal))
        {
        }

        Assert.Equal("event: change", line);
        var fragment = new HttpRequestMessage(HttpMethod.Get, "/services");
        fragment.Headers.Add("Cookie", cookie);
        fragment.Headers.Add("X-Heddle-Fragment", "live");
        var live = await (await http.SendAsync(fragment)).Content.ReadAsStringAsync();
        Assert.StartsWith("<table", live, StringComparison.Ordinal); // only the live part: the script swaps it in
        Assert.Contains("data-service=\"ticker\"", live, StringComparison.Ordinal);
    }

    private static HttpClient Browser(TestCluster cluster)
    {
        var handler = Heddle.Contracts.Trust.ClusterTrust.Handler(cluster.Controller.CaCertificate);
        handler.AllowAutoRedirect = false;
        handler.UseCookies = false;
        return cluster.Controller.Http(handler);
    }

    private static async Task<string> SignInAsync(HttpClient http, string token)
    {
        var response = await PostFormAsync(http, "/login", ("token", token));
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        return response.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
    }

    private static Task<HttpResponseMessage> PostFormAsync(HttpClient http, string path, params (string, string)[] fields) => PostFormAsync(http, path, fields, null, null);

    private static async Task<HttpResponseMessage> PostFormAsync(HttpClient http, string path, (string, string)[] fields, string? origin = null, string? cookie = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(fields.Select(f => KeyValuePair.Create(f.Item1, f.Item2))) };
        request.Headers.Add("Origin", origin ?? http.BaseAddress!.GetLeftPart(UriPartial.Authority));
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        return await http.SendAsync(request);
    }

    private static async Task<HttpResponseMessage> GetAsync(HttpClient http, string path, string cookie)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("Cookie", cookie.Split(';')[0]);
        return await http.SendAsync(request);
    }

    private static async Task<string> TextAsync(HttpClient http, string path, string cookie)
    {
        var response = await GetAsync(http, path, cookie);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>Each CPU the cluster page draws: its node, number, and the instance holding it (when the caller may know).</summary>
    private static List<(string Node, int Cpu, string? Instance)> Cpus(string page)
    {
        var cpus = new List<(string, int, string?)>();
        foreach (Match node in NodePattern().Matches(page))
        {
            foreach (Match cpu in CpuPattern().Matches(node.Groups[2].Value))
            {
                cpus.Add((node.Groups[1].Value, int.Parse(cpu.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), cpu.Groups[3].Success ? cpu.Groups[3].Value : null));
            }
        }

        return cpus;
    }

    private static async Task DeployAsync(HeddleApiClient client, TempDirectory work, string name)
    {
        var upload = await client.UploadPackageAsync(TestPackages.Build(work, name, $$"""
            name: {{name}}
            roles:
              job:
                entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
                size: { cores: 1, memoryMiB: 64 }
            """));
        await client.DeployAsync(new DeploymentRequest(upload.Sha256, $"service: {name}\nroles:\n  job: {{ instances: 1 }}\n"));
    }

    [GeneratedRegex("data-version=\"([0-9]+)\"")]
    private static partial Regex VersionPattern();

    [GeneratedRegex("<div class=\"node [A-Za-z]+\" data-node=\"([^\"]+)\"(.*?)<div class=\"memory\"", RegexOptions.Singleline)]
    private static partial Regex NodePattern();

    [GeneratedRegex("<span class=\"cpu[^\"]*\" data-cpu=\"([0-9]+)\"( data-instance=\"([^\"]+)\")?")]
    private static partial Regex CpuPattern();
}
