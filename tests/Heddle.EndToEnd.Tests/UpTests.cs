using System.Diagnostics;
using System.Text.Json;
using Heddle.Agent.Drivers;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>README's main job, end to end: `heddle up`, deploy the sample, reach it with curl, delete it, stop.</summary>
[Collection(UpCollection.Name)]
public sealed class UpTests : IDisposable
{
    private readonly TempDirectory _home = new("heddle-up-");

    public void Dispose() => _home.Dispose();

    [Fact]
    public async Task Up_DeployStatusLogsCurlDelete_ThenCtrlCLeavesNothingRunning()
    {
        var up = await UpCluster.StartAsync();
        var env = up.Environment;
        var pids = up.Processes().Values.ToList();
        (int ExitCode, string Output) stopped;
        bool upFileLeft;
        try
        {
            Assert.Equal(["controller", "dns", "lb", "n1", "n2", "n3"], up.Processes().Keys);

            var deploy = Heddle.Run(env, "deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath, "--wait");
            Assert.True(deploy.ExitCode == 0, deploy.ToString());
            Assert.Contains("all 4 instances Ready", deploy.Stdout);

            var status = Heddle.Run(env, "status", "hello", "-o", "json");
            Assert.True(status.ExitCode == 0, status.ToString());
            using var json = JsonDocument.Parse(status.Stdout);
            var web = json.RootElement.GetProperty("instances").EnumerateArray().Where(i => i.GetProperty("role").GetString() == "web").ToList();
            Assert.Equal(3, web.Count);
            foreach (var instance in web)
            {
                var url = $"http://{instance.GetProperty("nodeAddress").GetString()}:{instance.GetProperty("ports").GetProperty("http").GetInt32()}/";
                var curl = ProcessRunner.Run("curl", ["-sS", "--max-time", "5", url], TimeSpan.FromSeconds(10));
                Assert.Equal($"hi from {instance.GetProperty("id").GetString()}\n", curl.Stdout);
            }

            // As root (as CI runs), each node isolates its instances, and the web instances run as their service's own uid.
            using (var nodes = JsonDocument.Parse(Heddle.Run(env, "nodes", "-o", "json").Stdout))
            {
                Assert.All(nodes.RootElement.EnumerateArray(), n => Assert.StartsWith("a uid per service", n.GetProperty("isolation").GetString()));
            }

            var uids = web.Select(i => File.ReadLines($"/proc/{i.GetProperty("pid").GetInt32()}/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t')[1]).Distinct().ToList();
            Assert.Single(uids);
            // heddle up leases a block of uids of its own (from 300000 up), so a second cluster on this machine uses others.
            Assert.InRange(int.Parse(uids[0]), global::Heddle.Agent.Isolation.UidBlock.First, global::Heddle.Agent.Isolation.UidBlock.First + (global::Heddle.Agent.Isolation.UidBlock.Blocks * global::Heddle.Agent.Isolation.UidBlock.Size) - 1);

            var info = Heddle.Run(env, "info", "-o", "json");
            using var infoJson = JsonDocument.Parse(info.Stdout);
            var dnsAddress = System.Net.IPEndPoint.Parse(infoJson.RootElement.GetProperty("dnsAddress").GetString()!);
            Assert.Equal("heddle.internal", infoJson.RootElement.GetProperty("zone").GetString());
            string[] Dig(params string[] query) =>
                ProcessRunner.Run("dig", ["@" + dnsAddress.Address, "-p", dnsAddress.Port.ToString(), .. query], TimeSpan.FromSeconds(10)).Stdout
                    .Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var webAddresses = web.Select(i => i.GetProperty("nodeAddress").GetString()!).Distinct().Order().ToArray();
            var vip = json.RootElement.GetProperty("vip").GetString()!;
            Assert.StartsWith("127.77.0.", vip);
            Assert.Equal([vip], Dig("hello.heddle.internal", "+short"));
            Assert.Equal(webAddresses, Dig("web.hello.heddle.internal", "+short").Order());
            var srv = Dig("_http._tcp.web.hello.heddle.internal", "SRV", "+short");
            Assert.Equal(web.Select(i => $"0 1 {i.GetProperty("ports").GetProperty("http").GetInt32()} {i.GetProperty("index").GetInt32()}.web.hello.heddle.internal.").Order(), srv.Order());

            // Through the VIP: repeated requests reach every web instance, and keep working while one is killed.
            string Curl(string url) => ProcessRunner.Run("curl", ["-sS", "--max-time", "5", url], TimeSpan.FromSeconds(10)).Stdout;
            var seen = await Poll.UntilAsync(() => Task.FromResult(Enumerable.Range(0, 60).Select(_ => Curl($"http://{vip}:8080/")).ToHashSet()),
                s => s.Count == 3, TimeSpan.FromSeconds(30), "all three web instances through the VIP");
            Assert.Equal(web.Select(i => $"hi from {i.GetProperty("id").GetString()}\n").Order(), seen.Order());
            var victim = web[0].GetProperty("pid").GetInt32();
            System.Diagnostics.Process.GetProcessById(victim).Kill();
            var answers = Enumerable.Range(0, 40).Select(_ => Curl($"http://{vip}:8080/")).ToList();
            Assert.All(answers, a => Assert.StartsWith("hi from hello/web/", a)); // a refused forward is retried on another instance

            var logs = Heddle.Run(env, "logs", "hello/web/0");
            Assert.True(logs.ExitCode == 0, logs.ToString());
            Assert.Contains("hello/web/0 listening on", logs.Stdout);

            var unknown = Heddle.Run(env, "status", "hellp");
            Assert.Equal(1, unknown.ExitCode);
            Assert.Equal("heddle: no service 'hellp'; did you mean 'hello'?\n", unknown.Stderr);

            var delete = Heddle.Run(env, "delete", "hello", "--wait");
            Assert.True(delete.ExitCode == 0, delete.ToString());
            Assert.Contains("deleted hello", delete.Stdout);
            await Poll.UntilAsync(() => Task.FromResult(string.Join('\n', Dig("hello.heddle.internal"))), d => d.Contains("status: NXDOMAIN"), TimeSpan.FromSeconds(5), "NXDOMAIN after delete");
        }
        finally
        {
            stopped = await up.StopAsync();
            upFileLeft = File.Exists(up.UpFile);
            await up.DisposeAsync();
        }

        Assert.Equal(0, stopped.ExitCode);
        Assert.Contains("cluster stopped", stopped.Output);
        Assert.All(pids, pid => Assert.False(File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z "), $"process {pid} still runs"));
        Assert.False(upFileLeft);
    }
    [Fact]
    public void Status_WithNoCluster_SaysHowToStartOne()
    {
        var result = Heddle.Run(new Dictionary<string, string> { ["HEDDLE_HOME"] = _home.Path }, "status");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no cluster is configured", result.Stderr);
        Assert.Contains("heddle up", result.Stderr);
    }

    [Fact]
    public void Status_WithADeadController_SaysItCannotBeReached()
    {
        File.WriteAllText(Path.Combine(_home.Path, "config.json"), "{\"apiUrl\":\"http://127.0.0.1:9/\",\"token\":\"x\"}");

        var result = Heddle.Run(new Dictionary<string, string> { ["HEDDLE_HOME"] = _home.Path }, "nodes");

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("heddle: cannot reach the controller at http://127.0.0.1:9/ (connection refused)", result.Stderr);
    }
}
