using System.Diagnostics;
using System.Text.Json;
using Heddle.Agent.Drivers;
using Heddle.Testing;
using Heddle.Testing.Browser;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests.Browser;

/// <summary>
/// The dashboard in Debian's Chromium (headless, driven over the DevTools protocol) against `heddle up` with the sample
/// deployed, as an operator uses it: sign in, find the sample's instances on the cores `heddle instances` names, see a
/// killed instance restart and a settings change walk its upgrade domains without reloading, and, as a tenant, see no
/// other tenant's service. Screenshots go to the test output folder (screenshots/).
/// </summary>
[Collection(UpCollection.Name)]
public sealed class DashboardBrowserTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    public static string Screenshots => Path.Combine(AppContext.BaseDirectory, "screenshots");

    [Fact]
    public async Task Dashboard_OnASampleCluster_ShowsCoresRestartsAndAnUpgradeLive_AndATenantSeesOnlyItsOwn()
    {
        await using var up = await UpCluster.StartAsync();
        up.DeploySample();
        var config = ClientConfigFile.Read(up.Home);
        var (api, token) = (config.ApiUrl, config.Token);
        var pin = await Chromium.SpkiPinAsync(api.Host, api.Port);
        await using var browser = await Chromium.StartAsync(new ChromiumOptions { SpkiPins = [pin] });
        try
        {
            await SignInAsync(browser, api, token);
            var cookie = Assert.Single(await browser.CookiesAsync(), c => c.Name == "__Host-heddle-token");
            Assert.True(cookie.HttpOnly && cookie.Secure && cookie.SameSite == "Strict", $"cookie flags: {cookie}");
            Assert.Equal(0, await browser.EvaluateAsync<int>("document.cookie.length")); // the page's script cannot read the token

            // Cluster: each instance drawn on the node and CPUs the CLI names.
            await browser.WaitForAsync("document.querySelectorAll('.cpu[data-instance]').length == 4", Deadline, "the sample's 4 instances on the cluster page");
            foreach (var instance in Instances(up))
            {
                var drawn = await browser.EvaluateAsync<int[]>(
                    $"[...document.querySelectorAll('.node[data-node=\"{instance.Node}\"] .cpu[data-instance=\"{instance.Id}\"]')].map(e => +e.dataset.cpu)");
                Assert.Equal(instance.Cpus.Order(), drawn!.Order());
            }

            await browser.ScreenshotAsync(Path.Combine(Screenshots, "cluster.png"));

            // A killed instance: its row shows the restart, no reload.
            await browser.NavigateAsync(new Uri(api, "/services/hello").ToString());
            await browser.EvaluateAsync<bool>("window.heddleNoReload = true");
            var victim = Instances(up).First(i => i.Id == "hello/web/1");
            var restartsBefore = await browser.EvaluateAsync<int>($"+document.querySelector('tr[data-instance=\"{victim.Id}\"]').dataset.restarts");
            var killed = Stopwatch.StartNew();
            Assert.True(Posix.Signal(victim.Pid, Posix.SIGKILL), $"kill {victim.Pid}");
            await browser.WaitForAsync($"(r => r && (+r.dataset.restarts > {restartsBefore} || r.dataset.state != 'Ready'))(document.querySelector('tr[data-instance=\"{victim.Id}\"]'))",
                Deadline, $"{victim.Id}'s row to show it restarting");
            output.WriteLine($"instance killed → its restart on the page: {killed.ElapsedMilliseconds} ms");
            Assert.True(await browser.EvaluateAsync<bool>("window.heddleNoReload === true"), "the page was reloaded");
            await browser.WaitForAsync($"document.querySelector('tr[data-instance=\"{victim.Id}\"]').dataset.state == 'Ready'", Deadline, $"{victim.Id} Ready again");

            // A live tail of an instance's log, from its row's button.
            await browser.EvaluateAsync<bool>("(document.querySelector('button[data-tail=\"hello/web/0\"]').click(), true)");
            await browser.WaitForAsync("document.getElementById('log-output').textContent.includes('hello/web/0 listening on')", Deadline, "hello/web/0's log in the tail");
            await browser.ScreenshotAsync(Path.Combine(Screenshots, "service.png"));

            // Events, filtered by service and kind: the killed instance's state changes, nothing else.
            await browser.NavigateAsync(new Uri(api, "/events?service=hello&kind=InstanceState").ToString());
            var kinds = await browser.EvaluateAsync<string[]>("[...document.querySelectorAll('tr[data-kind]')].map(r => r.dataset.kind)");
            Assert.NotEmpty(kinds!);
            Assert.All(kinds!, k => Assert.Equal("InstanceState", k));

            // A settings change: the services page draws the upgrade domains filling in, as it happens.
            await browser.NavigateAsync(new Uri(api, "/services").ToString());
            await browser.EvaluateAsync<bool>("window.heddleNoReload = true");
            using var work = new TempDirectory();
            var v2 = work.Combine("hello.config.yaml");
            File.WriteAllText(v2, File.ReadAllText(SamplePackage.ConfigurationPath).Replace("Greeting: \"hi\"", "Greeting: \"hey\"") + "upgrade: { healthCheckStable: 2s }\n");
            var deploy = up.Run("deploy", SamplePackage.File, "--config", v2);
            Assert.True(deploy.ExitCode == 0, deploy.ToString());
            var seen = new List<string>();
            var shot = false;
            await Poll.UntilAsync(async () =>
            {
                var walk = (await browser.EvaluateAsync<string>(
                    "(w => w ? [...w.querySelectorAll('.ud')].map(u => u.dataset.domain + ':' + u.dataset.state).join(' ') : (document.querySelector('[data-upgrade]') || {dataset:{}}).dataset.upgrade || '')(document.querySelector('.walk'))")) ?? string.Empty;
                if (seen.Count == 0 || seen[^1] != walk)
                {
                    seen.Add(walk);
                }

                if (!shot && walk.Contains(":Done", StringComparison.Ordinal) && walk.Contains(":Pending", StringComparison.Ordinal))
                {
                    shot = true;
                    await browser.ScreenshotAsync(Path.Combine(Screenshots, "upgrade.png"));
                }

                return walk;
            }, walk => walk == "Completed", Deadline, "the upgrade to complete on the page", TimeSpan.FromMilliseconds(50));
            output.WriteLine($"upgrade domains as the page drew them: {string.Join(" | ", seen)}");
            Assert.Contains(seen, s => s.Contains("0:Updating", StringComparison.Ordinal) || s.Contains("0:Draining", StringComparison.Ordinal));
            Assert.Contains(seen, s => s.Contains("0:Done", StringComparison.Ordinal) && !s.Contains("1:Done", StringComparison.Ordinal)); // part way: one domain done, the next not yet
            Assert.True(await browser.EvaluateAsync<bool>("window.heddleNoReload === true"), "the page was reloaded during the upgrade");

            // A tenant: signs in with its own token and sees none of the default tenant's service.
            var tenant = up.Run("token", "create", "--tenant", "alice", "-o", "json");
            Assert.True(tenant.ExitCode == 0, tenant.ToString());
            var aliceToken = JsonDocument.Parse(tenant.Stdout).RootElement.GetProperty("token").GetString()!;
            await browser.EvaluateAsync<bool>("(document.querySelector('header form').submit(), true)");
            await browser.WaitForAsync("location.pathname == '/login'", Deadline, "signed out");
            await SignInAsync(browser, api, aliceToken);
            await browser.NavigateAsync(new Uri(api, "/services").ToString());
            var page = await browser.EvaluateAsync<string>("document.body.innerText");
            Assert.Contains("tenant alice", page!, StringComparison.Ordinal);
            Assert.DoesNotContain("hello", page, StringComparison.Ordinal);
            await browser.NavigateAsync(new Uri(api, "/").ToString());
            Assert.Equal(0, await browser.EvaluateAsync<int>("document.querySelectorAll('[data-instance]').length"));
            await browser.ScreenshotAsync(Path.Combine(Screenshots, "tenant.png"));
            Assert.DoesNotContain(browser.ConsoleMessages, m => m.Contains("Content Security Policy", StringComparison.OrdinalIgnoreCase));
        }
        catch
        {
            output.WriteLine($"browser console:\n{string.Join('\n', browser.ConsoleMessages)}");
            throw;
        }
    }

    private static async Task SignInAsync(Chromium browser, Uri api, string token)
    {
        await browser.NavigateAsync(api.ToString());
        await browser.WaitForAsync("location.pathname == '/login' && !!document.getElementById('token')", Deadline, "the sign-in page");
        await browser.EvaluateAsync<bool>($"(document.getElementById('token').value = {JsonSerializer.Serialize(token)}, document.querySelector('form').submit(), true)");
        await browser.WaitForAsync("location.pathname == '/' && !!document.getElementById('live')", Deadline, "the cluster page after signing in");
    }

    private sealed record Instance(string Id, string Node, int[] Cpus, int Pid);

    private static List<Instance> Instances(UpCluster up)
    {
        var listed = up.Run("instances", "hello", "-o", "json");
        Assert.True(listed.ExitCode == 0, listed.ToString());
        using var json = JsonDocument.Parse(listed.Stdout);
        return [.. json.RootElement.EnumerateArray().Select(i => new Instance(i.GetProperty("id").GetString()!, i.GetProperty("node").GetString()!,
            [.. i.GetProperty("cpus").EnumerateArray().Select(c => c.GetInt32())], i.GetProperty("pid").GetInt32()))];
    }
}
