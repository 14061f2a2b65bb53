using Heddle.Agent.Drivers;
using Heddle.Model.Definition;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Drivers;

/// <summary>
/// The process driver with real cgroups (as root, as CI runs): a descendant that left the process group dies with
/// its instance, a fork bomb stops at the pids limit, a memory hog is reported as out of memory, and the instance
/// sees none of the agent's environment. Every cgroup the test makes is removed by it.
/// </summary>
public sealed class ContainmentTests : IDisposable
{
    private readonly TempDirectory _directory = new("heddle-contain-");
    private readonly ProcessDriver _driver;
    private readonly Cgroups? _cgroups;

    public ContainmentTests()
    {
        _cgroups = Cgroups.Open("contain", _directory.Path, out var unavailable);
        _driver = new ProcessDriver(_cgroups, unavailable, TimeProvider.System);
    }

    public void Dispose()
    {
        _driver.ReleaseHost();
        _directory.Dispose();
    }

    private InstanceLaunch Launch(string script, int memoryMiB = 64, int maxProcesses = RoleSize.DefaultMaxProcesses)
    {
        var id = $"test/contain/{Guid.NewGuid():N}";
        var launch = new InstanceLaunch
        {
            Id = id,
            RoleDirectory = "/nonexistent",
            Role = new RoleDefinition { Name = "contain", EntryPoint = new EntryPoint("/bin/sh", ["-c", script]), Size = new RoleSize(1, memoryMiB) { MaxProcesses = maxProcesses } },
            Directory = _directory.Combine(Guid.NewGuid().ToString("N")),
            RealCpus = [0],
            MemoryMiB = memoryMiB,
            Environment = new Dictionary<string, string> { ["HEDDLE_INSTANCE"] = id },
        };
        Directory.CreateDirectory(launch.WorkingDirectory);
        Directory.CreateDirectory(Path.Combine(launch.Directory, "logs"));
        return launch;
    }

    private async Task StopAndCleanAsync(RunningProcess running)
    {
        await _driver.StopAsync(running, TimeSpan.FromSeconds(2), CancellationToken.None);
        _driver.Cleanup(running.Instance, null);
    }

    [Fact]
    public async Task Stop_AlsoKillsADescendantThatMadeASessionOfItsOwn()
    {
        Assert.NotNull(_cgroups); // CI runs as root with cgroups mounted
        var launch = Launch("setsid sh -c 'echo $$ > escaped.pid; exec sleep 300' & exec sleep 300");
        var running = _driver.Start(launch);
        var marker = Path.Combine(launch.WorkingDirectory, "escaped.pid");
        await Poll.UntilAsync(() => File.Exists(marker) && File.ReadAllText(marker).Trim().Length > 0, TimeSpan.FromSeconds(10), "the escaped child");
        var escaped = int.Parse(File.ReadAllText(marker).Trim());
        var escapedStart = Posix.StartTime(escaped)!.Value;
        Assert.NotEqual(running.Pid, int.Parse(File.ReadAllText($"/proc/{escaped}/stat").Split(' ')[5])); // its own session

        await StopAndCleanAsync(running);

        Assert.False(Posix.IsAlive(escaped, escapedStart));
        Assert.Empty(_cgroups!.Tasks(launch.Id));
    }

    [Fact]
    public async Task ForkBomb_StopsAtThePidsLimit()
    {
        Assert.NotNull(_cgroups);
        var launch = Launch("for i in $(seq 1 200); do sleep 300 & done; echo started; exec sleep 300", maxProcesses: 32);
        var running = _driver.Start(launch);
        try
        {
            // The shell gives up at the first fork the limit refuses; what it started stays, capped.
            await Poll.UntilAsync(() => File.Exists(launch.StderrPath) && File.ReadAllText(launch.StderrPath).Contains("fork", StringComparison.OrdinalIgnoreCase),
                TimeSpan.FromSeconds(20), "a refused fork");

            Assert.InRange(_cgroups!.Tasks(launch.Id).Count, 16, 32);
        }
        finally
        {
            await StopAndCleanAsync(running);
        }
    }

    [Fact]
    public async Task MemoryHog_IsKilledAndReportedOutOfMemory()
    {
        Assert.NotNull(_cgroups);
        var launch = Launch("exec dd if=/dev/zero of=/dev/null bs=256M count=1", memoryMiB: 32);
        var running = _driver.Start(launch);

        var code = await _driver.WaitForExitAsync(running, new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);
        var why = _driver.WhyEnded(running, launch);
        await StopAndCleanAsync(running);

        Assert.NotEqual(0, code);
        Assert.Equal("out of memory (limit 32 MiB)", why);
    }

    [Fact]
    public async Task Environment_HoldsNothingOfTheAgents()
    {
        Environment.SetEnvironmentVariable("HEDDLE_AGENT_SECRET_FOR_TEST", "do-not-leak");
        var launch = Launch("env | cut -d= -f1 | sort > env.txt; exec sleep 300");
        var running = _driver.Start(launch);
        try
        {
            var file = Path.Combine(launch.WorkingDirectory, "env.txt");
            await Poll.UntilAsync(() => File.Exists(file) && File.ReadAllText(file).Contains("PATH"), TimeSpan.FromSeconds(10), "env.txt");

            var names = File.ReadAllLines(file).Where(n => n.Length > 0).ToHashSet();
            names.ExceptWith(["PWD", "SHLVL", "_"]); // set by the shell itself
            Assert.Equal(["HEDDLE_INSTANCE", "HOME", "LANG", "PATH"], names.Order());
        }
        finally
        {
            Environment.SetEnvironmentVariable("HEDDLE_AGENT_SECRET_FOR_TEST", null);
            await StopAndCleanAsync(running);
        }
    }
}
