using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>Changing the sample on `heddle up` as a user would, with a client loop through the VIP the whole time.</summary>
[Collection(UpCollection.Name)]
public sealed class UpgradeEndToEndTests
{
    private static string Configuration(string greeting, string upgrade) =>
        File.ReadAllText(SamplePackage.ConfigurationPath).Replace("Greeting: \"hi\"", $"Greeting: \"{greeting}\"") + $"upgrade: {upgrade}\n";

    [Fact]
    public async Task DeployWait_KeepsWaitingAcrossAControllerKilledDuringIt()
    {
        await using var up = await UpCluster.StartAsync();
        var start = new ProcessStartInfo(Heddle.Executable, ["deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath, "--wait"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, Environment = { ["HEDDLE_HOME"] = up.Home },
        };
        using var deploy = Process.Start(start)!;
        var errors = deploy.StandardError.ReadToEndAsync();
        var accepted = await deploy.StandardOutput.ReadLineAsync();
        Assert.StartsWith("deployment accepted", accepted);
        var controller = up.Processes()["controller"];
        Process.GetProcessById(controller).Kill(); // while `deploy --wait` waits

        var rest = await deploy.StandardOutput.ReadToEndAsync();
        await deploy.WaitForExitAsync();
        Assert.True(deploy.ExitCode == 0, $"exit {deploy.ExitCode}: {rest} {await errors}");
        Assert.Contains("hello: all 4 instances Ready", rest);
        Assert.NotEqual(controller, up.Processes()["controller"]);
    }

    [Fact]
    public async Task Upgrade_SettingsChangeThenAFailingPackage_NoRequestFails_DomainsInOrder_FailureRolledBack()
    {
        await using var up = await UpCluster.StartAsync();
        using var work = new TempDirectory();
        var deploy = up.Run("deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath, "--wait");
        Assert.True(deploy.ExitCode == 0, deploy.ToString());
        var vip = JsonDocument.Parse(up.Run("status", "hello", "-o", "json").Stdout).RootElement.GetProperty("vip").GetString()!;
        var v2 = work.Combine("hello.config.yaml");
        File.WriteAllText(v2, Configuration("hey", "{ healthCheckStable: 1s }"));
        var broken = SamplePackage.Variant(work, "hello-broken", yaml => yaml.Replace(
            "entryPoint: { command: dotnet, args: [HelloWeb.dll] }", "entryPoint: { command: sh, args: [-c, \"echo \\\"KeyError: 'PORT'\\\" >&2; exit 1\"] }"));

        await using var loop = ClientLoop.Start($"http://{vip}:8080/");
        await Poll.UntilAsync(() => loop.Answers.Count >= 20, TimeSpan.FromSeconds(20), "the client loop's first answers");
        var upgrade = up.Run("deploy", SamplePackage.File, "--config", v2, "--wait");
        var afterUpgrade = loop.Answers.Count;
        await Poll.UntilAsync(() => loop.Answers.Count >= afterUpgrade + 20, TimeSpan.FromSeconds(20), "answers after the upgrade");
        var failing = up.Run("deploy", broken, "--config", v2, "--wait");
        var afterRollback = loop.Answers.Count;
        await Poll.UntilAsync(() => loop.Answers.Count >= afterRollback + 20, TimeSpan.FromSeconds(20), "answers after the rollback");
        await loop.DisposeAsync();

        Assert.True(upgrade.ExitCode == 0, upgrade.ToString());
        Assert.Contains("hello: upgrade to revision 2 completed", upgrade.Stdout);
        Assert.Empty(loop.Failures);
        Assert.All(loop.Answers.Skip(afterUpgrade), a => Assert.StartsWith("hey from hello/web/", a));
        Assert.All(loop.Answers.Skip(afterRollback), a => Assert.StartsWith("hey from hello/web/", a));

        Assert.Equal(1, failing.ExitCode);
        Assert.Contains("heddle: upgrade to revision 3 rolled back", failing.Stderr);
        Assert.Contains("upgrade domain 0: hello/web/0 exited with code 1 three times in", failing.Stderr);
        Assert.Contains("(last stderr line: \"KeyError: 'PORT'\")", failing.Stderr);

        using var history = JsonDocument.Parse(up.Run("history", "hello", "-o", "json").Stdout);
        var revisions = history.RootElement.EnumerateArray().ToDictionary(r => r.GetProperty("number").GetInt64(), r => r.GetProperty("outcome").GetString()!);
        Assert.Equal("Completed", revisions[2]);
        Assert.StartsWith("RolledBack: upgrade domain 0: hello/web/0 exited with code 1 three times", revisions[3]);

        // Order and availability, from the event log: every instance of a domain starts before any of the next one,
        // and at no moment is every web instance down.
        using var eventsJson = JsonDocument.Parse(up.Run("events", "-o", "json").Stdout);
        var events = eventsJson.RootElement.EnumerateArray().Select(e => (Kind: e.GetProperty("kind").GetString()!, Subject: e.GetProperty("subject").GetString()!,
            Message: e.GetProperty("message").GetString()!)).ToList();
        var upgradeStart = events.FindIndex(e => e.Kind == "UpgradeStarted");
        var upgradeEnd = events.FindIndex(e => e.Kind == "UpgradeCompleted");
        var starts = events.Skip(upgradeStart).Take(upgradeEnd - upgradeStart)
            .Where(e => e.Kind == "InstanceState" && e.Message.StartsWith("Starting", StringComparison.Ordinal)).Select(e => e.Subject).ToList();
        Assert.Equal(["hello/web/0", "hello/web/1", "hello/web/2"], starts);
        var down = new HashSet<string>();
        foreach (var e in events.Skip(upgradeStart).Where(e => e.Kind == "InstanceState" && e.Subject.StartsWith("hello/web/", StringComparison.Ordinal)))
        {
            if (e.Message.StartsWith("Ready", StringComparison.Ordinal))
            {
                down.Remove(e.Subject);
            }
            else
            {
                down.Add(e.Subject);
            }

            Assert.True(down.Count < 3, $"every web instance was down at once: {string.Join(", ", down)}");
        }
    }

    [Fact]
    public async Task Upgrade_ControllerKilledMidWalk_ResumesWithNoInstanceLostOrDuplicated()
    {
        await using var up = await UpCluster.StartAsync();
        using var work = new TempDirectory();
        var deployed = up.Run("deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath, "--wait");
        Assert.True(deployed.ExitCode == 0, $"deploy --wait exited with {deployed.ExitCode}: {deployed.Stdout} {deployed.Stderr}");
        var v2 = work.Combine("hello.config.yaml");
        // Gates long enough that a poll through the CLI (a process start each, slow on a loaded machine) finds the walk past
        // its first domain and not yet finished.
        File.WriteAllText(v2, Configuration("hey", "{ healthCheckStable: 4s }"));
        Assert.Equal(0, up.Run("deploy", SamplePackage.File, "--config", v2).ExitCode);
        await Poll.UntilAsync(() => Task.FromResult(JsonDocument.Parse(up.Run("upgrade", "status", "hello", "-o", "json").Stdout).RootElement),
            u => u.GetProperty("currentDomain").ValueKind == JsonValueKind.Number && u.GetProperty("currentDomain").GetInt32() >= 1,
            TimeSpan.FromSeconds(60), "the walk past upgrade domain 0");

        var controller = up.Processes()["controller"];
        Process.GetProcessById(controller).Kill(); // SIGKILL: no chance to finish anything
        await Poll.UntilAsync(() => up.Processes()["controller"] != controller, TimeSpan.FromSeconds(30), "heddle up to start the controller again");
        var follow = up.Run("upgrade", "status", "hello", "-f");

        Assert.True(follow.ExitCode == 0, follow.ToString());
        Assert.Contains("hello: upgrade to revision 2 completed", follow.Stdout);
        using var status = JsonDocument.Parse(up.Run("status", "hello", "-o", "json").Stdout);
        var instances = status.RootElement.GetProperty("instances").EnumerateArray().ToList();
        Assert.Equal(["hello/web/0", "hello/web/1", "hello/web/2", "hello/worker/0"], instances.Select(i => i.GetProperty("id").GetString()).Order());
        Assert.All(instances, i => Assert.Equal(("Ready", 2L), (i.GetProperty("state").GetString(), i.GetProperty("runningRevision").GetInt64())));
        var pids = instances.Select(i => i.GetProperty("pid").GetInt32()).ToHashSet();
        Assert.Equal(4, pids.Count);
        foreach (var i in instances.Where(i => i.GetProperty("role").GetString() == "web"))
        {
            var curl = ProcessRunner.Run("curl", ["-sS", "--max-time", "5", $"http://{i.GetProperty("nodeAddress").GetString()}:{i.GetProperty("ports").GetProperty("http").GetInt32()}/"], TimeSpan.FromSeconds(10));
            Assert.Equal($"hey from {i.GetProperty("id").GetString()}\n", curl.Stdout);
        }

        // No second copy of any instance runs: every hello process on the machine is one the controller knows (a replaced
        // one may still be in its stop grace period for a moment; a copy would stay).
        var running = await Poll.UntilAsync(() => Task.FromResult(HelloProcesses.Under(up.Home)),
            r => r.SequenceEqual(pids.Order()), TimeSpan.FromSeconds(20), "only the controller's instances running");
        Assert.Equal(pids.Order(), running);
    }
}
