using System.Diagnostics;
using Heddle.Testing;
using Heddle.Testing.Hosts;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests.Install;

/// <summary>
/// The package installed with dpkg on a Debian machine whose PID 1 is a real systemd (<see cref="SystemdHost"/>), and
/// its units run as an operator would run them: `systemctl enable --now`. The agent's unit keeps the promise its
/// comments make: killed, systemd starts it again (Restart=always) and the new agent adopts the instances the old one
/// started, which kept running in their own cgroups (KillMode=process).
/// </summary>
[Collection(Hosts.BedCollection.Name)]
[Trait("Category", Hosts.BedCollection.Category)]
public sealed class SystemdTests(PackageFixture package, ITestOutputHelper output) : IClassFixture<PackageFixture>
{
    [Fact]
    public async Task ThePackage_InstalledAndRunByItsUnits_ServesANode_AndAKilledAgentIsRestartedAndAdoptsItsInstances()
    {
        using var work = new TempDirectory("heddle-systemd-test-");
        var sleeper = TestPackages.Build(work, "sleeper", """
            name: sleeper
            roles:
              job:
                driver: process
                entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 3600"] }
                size: { cores: 1, memoryMiB: 64 }
            """);
        var clock = Stopwatch.StartNew();
        await using var machine = await SystemdHost.BootAsync($"dpkg -i /root/files/{Path.GetFileName(package.Path)}", package.Path, sleeper);
        output.WriteLine($"booted with the package installed in {clock.Elapsed.TotalSeconds:0.0} s");

        // The controller, on this machine's loopback, as controller.env and its unit say.
        await machine.ShellAsync("""sed -i 's|^HEDDLE_CONTROLLER_ARGS=.*|HEDDLE_CONTROLLER_ARGS="--listen 127.0.0.1 --api-port 7443 --agent-port 7001 --no-dns --no-lb"|' /etc/heddle/controller.env""");
        await machine.ShellAsync("systemctl enable --now heddle-controller");
        await Poll.UntilAsync(() => machine.RunAsync("/usr/bin/test", "-s", "/var/lib/heddle/controller/api-token"), r => r.ExitCode == 0, TimeSpan.FromSeconds(60),
            "the controller's admin token", TimeSpan.FromMilliseconds(250));
        await Poll.UntilAsync(() => machine.RunAsync("/bin/sh", "-c",
            "heddle login https://127.0.0.1:7443 --token \"$(cat /var/lib/heddle/controller/api-token)\" --ca-file /var/lib/heddle/controller/ca.crt"),
            r => r.ExitCode == 0, TimeSpan.FromSeconds(60), "heddle login to the controller", TimeSpan.FromMilliseconds(250));

        // The agent, enrolled with a join string kept in agent.env (mode 0600), as its comments say.
        var join = (await machine.ShellAsync("heddle token create --join --ttl 1h --uses 1")).Trim();
        await machine.ShellAsync($"""
            sed -i 's|^HEDDLE_AGENT_ARGS=.*|HEDDLE_AGENT_ARGS="--controller https://127.0.0.1:7001 --address 127.0.0.1 --name n1 --fault-domain fd1"|' /etc/heddle/agent.env
            echo 'HEDDLE_JOIN={join}' >> /etc/heddle/agent.env
            systemctl enable --now heddle-agent
            """);
        await Poll.UntilAsync(() => machine.RunAsync("heddle", "nodes"), r => r.ExitCode == 0 && r.Stdout.Contains("Ready", StringComparison.Ordinal),
            TimeSpan.FromSeconds(90), "node n1 Ready", TimeSpan.FromMilliseconds(500));

        var deploy = await machine.RunAsync("/bin/sh", "-c", "printf 'service: sleeper\\nroles:\\n  job: { instances: 2 }\\n' > /root/sleeper.yaml && heddle deploy /root/files/sleeper.hpkg --config /root/sleeper.yaml --wait --timeout 2m");
        Assert.True(deploy.ExitCode == 0, $"heddle deploy: {deploy}\ninstance's stderr: {await machine.RunAsync("heddle", "logs", "sleeper/job/0", "--stderr")}\n"
            + $"agent's journal: {await machine.RunAsync("journalctl", "-u", "heddle-agent", "--no-pager", "-n", "60")}\n"
            + $"mounts: {await machine.RunAsync("/bin/sh", "-c", "findmnt -o TARGET,PROPAGATION / /var/lib/heddle/agent; readlink /proc/1/ns/mnt /proc/$(systemctl show -p MainPID --value heddle-agent)/ns/mnt; touch /var/lib/heddle/agent/t.ns; unshare --mount=/var/lib/heddle/agent/t.ns true; echo unshare=$?")}");
        var before = await InstancePidsAsync(machine);
        Assert.Equal(2, before.Count);
        output.WriteLine($"deployed: instances {string.Join(", ", before)}");

        // The agent killed: systemd starts it again; the instances ran on meanwhile and are adopted, not restarted.
        var agentPid = (await machine.ShellAsync("systemctl show -p MainPID --value heddle-agent")).Trim();
        await machine.ShellAsync("systemctl kill --kill-whom=main --signal=KILL heddle-agent");
        await Poll.UntilAsync(() => machine.ShellAsync("systemctl show -p NRestarts,MainPID,ActiveState heddle-agent"),
            s => s.Contains("NRestarts=1", StringComparison.Ordinal) && s.Contains("ActiveState=active", StringComparison.Ordinal) && !s.Contains($"MainPID={agentPid}\n", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60), "systemd to start the killed agent again");
        // The new agent says it adopted both (its store state alone would still read Ready from before the kill).
        var journal = await Poll.UntilAsync(() => machine.ShellAsync("journalctl -u heddle-agent --no-pager -o cat"),
            j => j.Contains("Adopting sleeper/job/0", StringComparison.Ordinal) && j.Contains("Adopting sleeper/job/1", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60), "the restarted agent to adopt both instances", TimeSpan.FromMilliseconds(500));
        output.WriteLine(string.Join('\n', journal.Split('\n').Where(l => l.Contains("Adopting", StringComparison.Ordinal) || l.Contains("Starting sleeper", StringComparison.Ordinal) || l.Contains("Stopping", StringComparison.Ordinal))));
        Assert.DoesNotContain("Stopping sleeper", journal, StringComparison.Ordinal);
        await Poll.UntilAsync(() => machine.RunAsync("heddle", "instances", "sleeper"),
            r => r.ExitCode == 0 && r.Stdout.Split('\n').Count(l => l.Contains(" Ready", StringComparison.Ordinal)) == 2, TimeSpan.FromSeconds(60), "both instances Ready");
        Assert.Equal(before, await InstancePidsAsync(machine));
    }

    /// <summary>The instances' processes as the machine's own ps sees them (sleep 3600), sorted.</summary>
    private static async Task<IReadOnlyList<string>> InstancePidsAsync(SystemdHost machine) =>
        [.. (await machine.ShellAsync("pgrep -x sleep || true")).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order(StringComparer.Ordinal)];
}
