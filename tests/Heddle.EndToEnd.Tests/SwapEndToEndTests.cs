using System.Text.Json;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// Staging and production slots on `heddle up`, checked with dig and a client loop: production at v1 and staging at
/// v2 each answer their own DNS name with their own VIP; during `heddle swap` a client loop through the production
/// VIP sees no failed request and its answers change from v1 to v2 once and never back; a second swap brings v1 back
/// the same way.
/// </summary>
[Collection(UpCollection.Name)]
public sealed class SwapEndToEndTests
{
    [Fact]
    public async Task Swap_MovesTheProductionVipToStaging_WithNoFailedRequest_AndBackAgain()
    {
        await using var up = await UpCluster.StartAsync("--cores-per-node", "4");
        using var work = new TempDirectory();
        var v1 = work.Combine("v1.config.yaml");
        var v2 = work.Combine("v2.config.yaml");
        var configuration = File.ReadAllText(SamplePackage.ConfigurationPath);
        File.WriteAllText(v1, configuration.Replace("Greeting: \"hi\"", "Greeting: \"v1\""));
        File.WriteAllText(v2, configuration.Replace("Greeting: \"hi\"", "Greeting: \"v2\""));
        Assert.NotEqual(configuration, File.ReadAllText(v1));

        var production = up.Run("deploy", SamplePackage.File, "--config", v1, "--wait");
        Assert.True(production.ExitCode == 0, production.ToString());
        var staging = up.Run("deploy", SamplePackage.File, "--config", v2, "--slot", "staging", "--wait");
        Assert.True(staging.ExitCode == 0, staging.ToString());
        Assert.Contains("service hello (staging slot)", staging.Stdout);

        var status = up.Run("status", "hello");
        Assert.Contains("[production: hello, deployment hello]", status.Stdout);
        Assert.Contains("[staging: hello.staging, deployment hello@2]", status.Stdout);

        using var info = JsonDocument.Parse(up.Run("info", "-o", "json").Stdout);
        var dns = System.Net.IPEndPoint.Parse(info.RootElement.GetProperty("dnsAddress").GetString()!);
        var zone = info.RootElement.GetProperty("zone").GetString();
        string Dig(string name) => ProcessRunner.Run("dig", ["@" + dns.Address, "-p", dns.Port.ToString(), "+short", name], TimeSpan.FromSeconds(10)).Stdout.Trim();
        var productionVip = VipOf(up, null);
        var stagingVip = VipOf(up, "staging");
        Assert.NotEqual(productionVip, stagingVip);
        Assert.Equal(productionVip, Dig($"hello.{zone}"));
        Assert.Equal(stagingVip, Dig($"hello.staging.{zone}"));
        Assert.NotEmpty(Dig($"web.hello.staging.{zone}"));

        await using (var loop = ClientLoop.Start($"http://{productionVip}:8080/"))
        {
            await loop.WaitForAnswerAsync("v1");
            var swap = up.Run("swap", "hello");
            Assert.True(swap.ExitCode == 0, swap.ToString());
            await loop.WaitForAnswerAsync("v2");
            var seen = await loop.StopAsync();
            Assert.True(seen.Failed == 0, $"{seen.Failed} failed, the first: " + string.Join('\n', loop.Failures.Take(5)));
            Assert.Equal(["v1", "v2"], seen.Changes);
        }

        // DNS names and VIPs did not change; what they lead to did.
        Assert.Equal(productionVip, Dig($"hello.{zone}"));
        Assert.Equal((productionVip, stagingVip), (VipOf(up, null), VipOf(up, "staging")));

        await using (var loop = ClientLoop.Start($"http://{productionVip}:8080/"))
        {
            await loop.WaitForAnswerAsync("v2");
            Assert.Equal(0, up.Run("swap", "hello").ExitCode);
            await loop.WaitForAnswerAsync("v1");
            var seen = await loop.StopAsync();
            Assert.True(seen.Failed == 0, $"{seen.Failed} failed, the first: " + string.Join('\n', loop.Failures.Take(5)));
            Assert.Equal(["v2", "v1"], seen.Changes);
        }

        Assert.Equal(0, up.Run("delete", "hello", "--wait").ExitCode);
        Assert.Contains("no service is deployed", up.Run("status", "hello").Stderr);
    }

    [Fact]
    public async Task SwapsRacingControllerCrashes_NeverLeaveBothVipsOnTheSameInstances()
    {
        await using var up = await UpCluster.StartAsync("--cores-per-node", "2");
        using var work = new TempDirectory();
        var small = work.Combine("small.config.yaml");
        File.WriteAllText(small, "service: hello\nroles:\n  web:    { instances: 1, settings: { Greeting: \"v1\" } }\n  worker: { instances: 1, settings: { IntervalSeconds: \"5\" } }\n");
        Assert.Equal(0, up.Run("deploy", SamplePackage.File, "--config", small, "--wait").ExitCode);
        Assert.Equal(0, up.Run("deploy", SamplePackage.File, "--config", small, "--slot", "staging", "--wait").ExitCode);
        var random = new Random(7);
        for (var round = 0; round < 4; round++)
        {
            // `heddle swap` and a kill -9 of the controller a moment later: the swap lands whole or not at all.
            var controller = up.Processes()["controller"];
            var swap = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(Heddle.Executable, ["swap", "hello"])
            {
                Environment = { ["HEDDLE_HOME"] = up.Home }, RedirectStandardOutput = true, RedirectStandardError = true,
            })!;
            await Task.Delay(random.Next(0, 120));
            System.Diagnostics.Process.GetProcessById(controller).Kill();
            await swap.WaitForExitAsync();
            await Poll.UntilAsync(() => up.Processes()["controller"] != controller, TimeSpan.FromSeconds(30), "heddle up to start the controller again");
            await Poll.UntilAsync(() => up.Run("info").ExitCode == 0, TimeSpan.FromSeconds(30), "the controller to answer");

            using var services = JsonDocument.Parse(up.Run("status", "-o", "json").Stdout);
            var slots = services.RootElement.EnumerateArray().ToList();
            Assert.Equal(["production", "staging"], slots.Select(s => s.GetProperty("slot").GetString()).Order());
            var vips = slots.Select(s => s.GetProperty("vip").GetString()).ToList();
            Assert.Equal(2, vips.Distinct().Count());
            Assert.Equal(2, slots.Select(s => s.GetProperty("deployment").GetString()).Distinct().Count());

            // Each VIP leads to the instances of one deployment only, never to the other's.
            var config = await Poll.UntilAsync(() => LoadBalancerConfigAsync(up),
                c => c.GetProperty("listeners").GetArrayLength() == 2 && c.GetProperty("listeners").EnumerateArray().All(l => l.GetProperty("backends").GetArrayLength() == 1),
                TimeSpan.FromSeconds(30), "both VIPs with their backends");
            var owners = config.GetProperty("listeners").EnumerateArray()
                .ToDictionary(l => l.GetProperty("vip").GetString()!, l => l.GetProperty("backends").EnumerateArray().Single().GetProperty("id").GetString()!.Split('/')[0]);
            foreach (var slot in slots)
            {
                Assert.Equal(slot.GetProperty("deployment").GetString(), owners[slot.GetProperty("vip").GetString()!]);
            }
        }
    }

    /// <summary>What the controller tells the load balancer now (GET /v1/lb/config with the client's token).</summary>
    private static async Task<JsonElement> LoadBalancerConfigAsync(UpCluster up)
    {
        using var http = ClientConfigFile.Read(up.Home).Http();
        using var json = JsonDocument.Parse(await http.GetStringAsync("v1/lb/config"));
        return json.RootElement.Clone();
    }

    private static string VipOf(UpCluster up, string? slot)
    {
        using var json = JsonDocument.Parse(up.Run(slot is null ? ["status", "hello", "-o", "json"] : ["status", "hello", "--slot", slot, "-o", "json"]).Stdout);
        return json.RootElement.GetProperty("vip").GetString()!;
    }
}
