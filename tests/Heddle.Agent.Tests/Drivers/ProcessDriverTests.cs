using Heddle.Agent.Drivers;
using Heddle.Model.Definition;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Drivers;

public sealed class ProcessDriverTests : IDisposable
{
    private readonly TempDirectory _directory = new("heddle-driver-");

    public void Dispose() => _directory.Dispose();

    private InstanceLaunch Launch(string command, IReadOnlyList<string> args, params StartupTask[] startup)
    {
        var launch = new InstanceLaunch
        {
            Id = $"test/role/{Guid.NewGuid():N}",
            RoleDirectory = "/nonexistent",
            Role = new RoleDefinition { Name = "role", EntryPoint = new EntryPoint(command, args), Startup = startup },
            Directory = _directory.Path,
            RealCpus = [0],
            MemoryMiB = 64,
            Environment = new Dictionary<string, string> { ["GREETING"] = "it's \"quoted\" $HOME" },
        };
        Directory.CreateDirectory(launch.WorkingDirectory);
        Directory.CreateDirectory(Path.Combine(launch.Directory, "logs"));
        return launch;
    }

    [Fact]
    public async Task Start_RunsInItsOwnProcessGroupPinnedToItsCpusWithItsEnvironment()
    {
        var driver = new ProcessDriver(null, "not under test", TimeProvider.System);
        var launch = Launch("/bin/sh", ["-c", "echo \"$GREETING\"; echo 'arg with '\\''quote'\\'''; exec sleep 60"]);

        var running = driver.Start(launch);
        try
        {
            await Poll.UntilAsync(() => File.Exists(launch.StdoutPath) && File.ReadAllText(launch.StdoutPath).Contains("quote"), TimeSpan.FromSeconds(10), "output");
            Assert.Equal("it's \"quoted\" $HOME\narg with 'quote'\n", File.ReadAllText(launch.StdoutPath));
            Assert.Equal("0", Posix.AllowedCpus(running.Pid));
            var stat = File.ReadAllText($"/proc/{running.Pid}/stat").Split(' ');
            Assert.Equal(running.Pid.ToString(), stat[4]); // process group id
        }
        finally
        {
            await driver.StopAsync(running, TimeSpan.FromSeconds(5), CancellationToken.None);
        }

        Assert.False(Posix.IsAlive(running.Pid, running.StartTime));
    }

    [Fact]
    public async Task Stop_KillsTheWholeGroupIncludingBackgroundTasks_AndEscalatesToSigkill()
    {
        var driver = new ProcessDriver(null, "not under test", TimeProvider.System);
        var marker = Path.Combine(_directory.Path, "background.pid");
        var launch = Launch("/bin/sh", ["-c", "trap '' TERM; while true; do sleep 1; done"],
            new StartupTask("/bin/sh", ["-c", $"echo $$ > {marker}; exec sleep 120"], StartupTaskType.Background));

        var running = driver.Start(launch);
        await Poll.UntilAsync(() => File.Exists(marker) && File.ReadAllText(marker).Trim().Length > 0, TimeSpan.FromSeconds(10), "background task started");
        var background = int.Parse(File.ReadAllText(marker).Trim());
        var backgroundStart = Posix.StartTime(background)!.Value;

        await driver.StopAsync(running, TimeSpan.FromMilliseconds(500), CancellationToken.None);

        Assert.False(Posix.IsAlive(running.Pid, running.StartTime));
        Assert.False(Posix.IsAlive(background, backgroundStart));
    }

    [Fact]
    public async Task RunStartupTask_ReturnsItsExitCode()
    {
        var driver = new ProcessDriver(null, "not under test", TimeProvider.System);
        var launch = Launch("/bin/true", []);

        Assert.Equal(3, await driver.RunStartupTaskAsync(launch, new StartupTask("/bin/sh", ["-c", "exit 3"], StartupTaskType.Simple), 1, CancellationToken.None));
    }

    [Fact]
    public async Task WaitForExit_AdoptedProcess_IsSeenToEnd()
    {
        var driver = new ProcessDriver(null, "not under test", TimeProvider.System);
        var launch = Launch("/bin/sh", ["-c", "sleep 0.3"]);
        var started = driver.Start(launch);
        var adopted = started with { Child = null };

        var code = await driver.WaitForExitAsync(adopted, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);

        Assert.Null(code);
        await started.Child!.WaitForExitAsync();
    }
}
