using System.Diagnostics;
using System.Text.Json;
using Heddle.Testing;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// `heddle up --controllers 3`: three controllers on a three-member etcd. The leader killed with -9 in the middle of
/// a deployment of 30 instances: another controller leads, the deployment completes with every instance running once,
/// and neither a client loop through the VIP nor `dig` sees a failure meanwhile.
/// </summary>
[Collection(UpCollection.Name)]
public sealed class FailoverEndToEndTests(ITestOutputHelper output)
{
    [Fact]
    public async Task LeaderKilledMidDeploymentOf30_AnotherLeads_TheDeploymentCompletes_NothingLostOrDuplicated_AndTheDataPlaneNeverFails()
    {
        await using var up = await UpCluster.StartAsync("--controllers", "3", "--node-timeout", "10s", "--cores-per-node", "12");
        var (dns, vip) = up.DeploySample();
        using (var info = JsonDocument.Parse(up.Run("info", "-o", "json").Stdout))
        {
            Assert.Equal(3, info.RootElement.GetProperty("controllers").GetArrayLength());
            Assert.StartsWith("etcd ", info.RootElement.GetProperty("store").GetString());
        }

        // As a stub resolver asks: a query unanswered for 2 s is sent again (twice at most). 30 .NET instances starting on
        // this 2-core machine beside three controllers and three etcd members can keep the DNS process off the CPU that long.
        string Dig() => ProcessRunner.Run("dig", ["@" + dns.Address, "-p", dns.Port.ToString(), "+short", "+tries=3", "+time=2", "hello.heddle.internal"], TimeSpan.FromSeconds(15)).Stdout.Trim();
        await using var loop = ClientLoop.Start($"http://{vip}:8080/");
        await loop.WaitForAnswerAsync("hi");
        using var stopDigs = new CancellationTokenSource();
        var digs = Task.Run(() =>
        {
            var answers = new List<string>();
            while (!stopDigs.IsCancellationRequested)
            {
                answers.Add(Dig());
            }

            return answers;
        });

        using var work = new TempDirectory();
        var thirty = work.Combine("thirty.yaml");
        File.WriteAllText(thirty, "service: hello\nroles:\n  web: { instances: 29, settings: { Greeting: hi } }\n  worker: { instances: 1, settings: { IntervalSeconds: \"5\" } }\n");
        var deploy = up.Run("deploy", SamplePackage.File, "--config", thirty);
        Assert.True(deploy.ExitCode == 0, deploy.ToString());
        // The deployment is accepted and under way: the leader is placing and the nodes are starting instances.
        var leader = Leader(up);
        var controllers = Controllers(up);
        var killed = DateTimeOffset.UtcNow;
        Process.GetProcessById(controllers[leader]).Kill(); // SIGKILL, mid-deployment
        output.WriteLine($"killed the leader {leader} (pid {controllers[leader]}) right after it accepted the deployment of 30");
        var elected = await Poll.UntilAsync(() => Task.FromResult(Elections(up).Where(e => e.Time > killed && e.Holder != leader).ToList()), e => e.Count > 0,
            TimeSpan.FromSeconds(30), "another controller to lead");
        output.WriteLine($"a new leader ({elected[0].Holder}) {(elected[0].Time - killed).TotalSeconds:0.00} s after the kill");

        await Poll.UntilAsync(() => Task.FromResult(Ready(up)), r => r == 30, TimeSpan.FromSeconds(120), "all 30 Ready");
        output.WriteLine($"all 30 Ready seen {(DateTimeOffset.UtcNow - killed).TotalSeconds:0.0} s after the kill (each heddle command takes seconds while 30 instances start on this machine)");
        await stopDigs.CancelAsync();
        var answers = await digs;
        var seen = await loop.StopAsync();

        using var status = JsonDocument.Parse(up.Run("status", "hello", "-o", "json").Stdout);
        var instances = status.RootElement.GetProperty("instances").EnumerateArray().ToList();
        Assert.Equal(30, instances.Select(i => i.GetProperty("id").GetString()).Distinct().Count());
        var pids = instances.Select(i => i.GetProperty("pid").GetInt32()).Order().ToList();
        // Counted from the processes themselves: every hello process of this cluster is one the controllers know, once.
        var running = await Poll.UntilAsync(() => Task.FromResult(HelloProcesses.Under(up.Home)), r => r.SequenceEqual(pids), TimeSpan.FromSeconds(20), "only the known instances running");
        Assert.Equal(pids, running);
        Assert.True(seen.Failed == 0, string.Join('\n', loop.Failures));
        Assert.All(answers, a => Assert.Equal(vip, a));
        output.WriteLine($"{seen.Failed} failed of {loop.Answers.Count} requests through the VIP; {answers.Count} digs, all answered {vip}");
    }

    private static int Ready(UpCluster up)
    {
        var run = up.Run("status", "hello", "-o", "json");
        if (run.ExitCode != 0)
        {
            return -1;
        }

        using var status = JsonDocument.Parse(run.Stdout);
        return status.RootElement.GetProperty("instances").EnumerateArray().Count(i => i.GetProperty("state").GetString() == "Ready"
            && i.GetProperty("runningRevision").GetInt64() == status.RootElement.GetProperty("revision").GetInt64());
    }

    private static string Leader(UpCluster up)
    {
        using var info = JsonDocument.Parse(up.Run("info", "-o", "json").Stdout);
        return info.RootElement.GetProperty("leader").GetString()!;
    }

    /// <summary>Each controller's pid by its API URL, from up.json.</summary>
    private static Dictionary<string, int> Controllers(UpCluster up)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(up.UpFile));
        return json.RootElement.GetProperty("processes").EnumerateArray().Where(p => p.GetProperty("name").GetString()!.StartsWith("controller", StringComparison.Ordinal))
            .ToDictionary(p => p.GetProperty("address").GetString()!, p => p.GetProperty("pid").GetInt32());
    }

    private static List<(DateTimeOffset Time, string Holder)> Elections(UpCluster up)
    {
        var run = up.Run("events", "-o", "json");
        if (run.ExitCode != 0)
        {
            return [];
        }

        using var events = JsonDocument.Parse(run.Stdout);
        return [.. events.RootElement.EnumerateArray().Where(e => e.GetProperty("kind").GetString() == "LeaderElected")
            .Select(e => (e.GetProperty("time").GetDateTimeOffset(), e.GetProperty("subject").GetString()!))];
    }
}
