using Heddle.Agent.Drivers;
using Heddle.Agent.Drivers.Containers;
using Heddle.Agent.Isolation;
using Heddle.Model.Definition;
using Heddle.Packaging;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Drivers;

/// <summary>
/// The container driver with real runc, overlay mounts and cgroups (as root, as CI runs), on a busybox image built
/// from the host's busybox-static: PID 1 is the entry point and sees no host process; / is the image; writes land in
/// the instance's upper layer while the image and the package stay untouched; the service's uid, its CPUs and its
/// memory cap hold; a new driver (an agent restart) adopts the running container; stopping and cleaning up leaves
/// no mount, cgroup, runc state or upper layer behind.
/// </summary>
public sealed class ContainerDriverTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private static readonly Identity Service = new(231_000, 231_000);

    private readonly TempDirectory _directory = new("heddle-container-");
    private readonly Cgroups? _cgroups;
    private readonly ContainerDriver? _driver;
    private readonly string? _unavailable;
    private readonly string _image;
    private readonly string _roleDirectory;

    public ContainerDriverTests()
    {
        File.SetUnixFileMode(_directory.Path, StateFolders.PassThrough);
        _cgroups = Cgroups.Open("ctr", _directory.Path, out _unavailable);
        _driver = ContainerDriver.Open(_directory.Path, _cgroups, TimeProvider.System, out var unavailable);
        _unavailable ??= unavailable;
        _image = _directory.Combine("images", "busybox", "rootfs");
        Directory.CreateDirectory(Path.GetDirectoryName(_image)!);
        using (var tar = File.OpenRead(TestImages.Tar()))
        {
            RootfsArchive.Extract(tar, _image, RootfsLimits.Default);
        }

        _roleDirectory = _directory.Combine("package", "roles", "box");
        Directory.CreateDirectory(_roleDirectory);
        File.WriteAllText(Path.Combine(_roleDirectory, "server.txt"), "the package's own text\n");
    }

    public void Dispose()
    {
        _cgroups?.RemoveAll();
        _directory.Dispose();
    }

    private InstanceLaunch Launch(string script, int memoryMiB = 64)
    {
        var id = $"test/box/{Guid.NewGuid():N}"[..24];
        var directory = _directory.Combine("instances", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(directory, "logs"));
        File.SetUnixFileMode(directory, StateFolders.PassThrough);
        return new InstanceLaunch
        {
            Id = id,
            Role = new RoleDefinition { Name = "box", Driver = RoleDriver.Container, Image = "busybox", EntryPoint = new EntryPoint("/bin/sh", ["-c", script]), Size = new RoleSize(1, memoryMiB) },
            Directory = directory,
            RoleDirectory = _roleDirectory,
            ImageRootfs = _image,
            RealCpus = [0],
            MemoryMiB = memoryMiB,
            Environment = new Dictionary<string, string> { ["HEDDLE_INSTANCE"] = id },
            RunAs = Service,
        };
    }

    private ContainerDriver Driver => _driver ?? throw new InvalidOperationException($"the container driver is unavailable: {_unavailable}");

    private async Task<RunningProcess> StartAsync(InstanceLaunch launch)
    {
        Driver.PrepareDisk(launch);
        var description = Path.Combine(launch.Directory, "heddle-instance.json.partial");
        File.WriteAllText(description, "{\"instance\": \"" + launch.Id + "\"}");
        Driver.PlaceDescription(launch, description);
        return await Driver.StartAsync(launch, CancellationToken.None);
    }

    private static string Upper(InstanceLaunch launch, string path) => Path.Combine(launch.Directory, "disk", "upper", path.TrimStart('/'));

    private async Task<string> ReadWhenWrittenAsync(InstanceLaunch launch, string path)
    {
        var file = Upper(launch, path);
        await Poll.UntilAsync(() => File.Exists(file) && File.ReadAllText(file).EndsWith('\n'), Deadline, $"{path} written inside the container");
        return File.ReadAllText(file).Trim();
    }

    private void AssertNothingLeft(InstanceLaunch launch)
    {
        Assert.DoesNotContain(File.ReadAllLines("/proc/mounts"), l => l.Contains(launch.Directory, StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine("/sys/fs/cgroup/memory", _cgroups!.RelativePath(launch.Id))), "the memory cgroup is left");
        Assert.False(Directory.Exists(Path.Combine(_directory.Path, "runc", ContainerId(launch))), "runc's state is left");
        Assert.False(Directory.Exists(Path.Combine(launch.Directory, "disk")), "the upper layer is left");
        Assert.True(Directory.Exists(Path.Combine(launch.Directory, "logs")), "the logs go only with the retention sweep");
    }

    private static string ContainerId(InstanceLaunch launch) => launch.Id.Replace('/', '_');

    [Fact]
    public async Task EntryPoint_IsPid1_InTheImage_AsTheServiceUid_WritesLandInItsOwnLayer()
    {
        var launch = Launch("""
            echo $$ > /tmp/pid
            ls /proc | grep -c '^[0-9]' > /tmp/processes
            id -u > /tmp/uid
            hostname > /tmp/hostname
            grep Cpus_allowed_list /proc/self/status | cut -f2 > /tmp/cpus
            cat /app/heddle-instance.json > /tmp/description; echo >> /tmp/description
            (echo owned >> /app/server.txt) 2>/dev/null; echo $? > /tmp/package-write
            (echo owned >> /bin/busybox) 2>/dev/null; echo $? > /tmp/image-write
            echo mine > /app/note; echo $? > /tmp/app-write
            exec sleep 300
            """);
        var running = await StartAsync(launch);
        try
        {
            Assert.Equal("1", await ReadWhenWrittenAsync(launch, "/tmp/pid"));
            Assert.True(int.Parse(await ReadWhenWrittenAsync(launch, "/tmp/processes")) <= 3, "the container sees host processes");
            Assert.Equal(Service.Uid.ToString(), await ReadWhenWrittenAsync(launch, "/tmp/uid"));
            Assert.Equal(ContainerDriver.Hostname(launch.Id), await ReadWhenWrittenAsync(launch, "/tmp/hostname"));
            Assert.Equal("0", await ReadWhenWrittenAsync(launch, "/tmp/cpus"));
            Assert.Contains(launch.Id, await ReadWhenWrittenAsync(launch, "/tmp/description"));
            Assert.NotEqual("0", await ReadWhenWrittenAsync(launch, "/tmp/package-write"));
            Assert.NotEqual("0", await ReadWhenWrittenAsync(launch, "/tmp/image-write"));
            Assert.Equal("0", await ReadWhenWrittenAsync(launch, "/tmp/app-write"));

            // Writes landed in the instance's upper layer; the image and the package were never written.
            Assert.Equal("mine", File.ReadAllText(Upper(launch, "/app/note")).Trim());
            Assert.False(File.Exists(Path.Combine(_image, "tmp", "pid")));
            Assert.Equal("the package's own text\n", File.ReadAllText(Path.Combine(_roleDirectory, "server.txt")));
            Assert.Equal(running.Pid, int.Parse(File.ReadAllText($"/proc/{running.Pid}/status").Split('\n').First(l => l.StartsWith("NSpid:")).Split('\t')[1]));
            Assert.Contains("sleep", File.ReadAllText($"/proc/{running.Pid}/cmdline"));
        }
        finally
        {
            await Driver.StopAsync(running, TimeSpan.FromSeconds(2), CancellationToken.None);
            Driver.Cleanup(launch.Id, launch.Directory);
        }

        AssertNothingLeft(launch);
        // The agent's teardown leaves no folder of its own in any hierarchy, those runc made the instance's path in included.
        var node = Path.GetDirectoryName(_cgroups!.RelativePath(launch.Id))!;
        _cgroups.RemoveAll();
        Assert.DoesNotContain(Directory.EnumerateDirectories("/sys/fs/cgroup"), h => Directory.Exists(Path.Combine(h, node)));
    }

    [Fact]
    public async Task TheDefaultSeccompFilter_RefusesAUserNamespace_WithEperm_AndOrdinaryWorkRuns()
    {
        // unshare(CLONE_NEWUSER) needs no capability on this kernel: only the filter stops it. A mount namespace
        // (unshare -Urm) and the ordinary syscalls of a shell (fork, pipes, files) are checked beside it.
        var launch = Launch("""
            grep '^Seccomp:' /proc/self/status | cut -f2 > /tmp/seccomp
            unshare -U true 2> /tmp/unshare-error; echo $? > /tmp/unshare
            unshare -Urm true 2> /dev/null; echo $? > /tmp/unshare-urm
            (echo forked | cat > /tmp/forked-text) && echo $? > /tmp/forked
            exec sleep 300
            """);
        var running = await StartAsync(launch);
        try
        {
            Assert.Equal("2", await ReadWhenWrittenAsync(launch, "/tmp/seccomp")); // SECCOMP_MODE_FILTER
            Assert.NotEqual("0", await ReadWhenWrittenAsync(launch, "/tmp/unshare"));
            Assert.Contains("Operation not permitted", File.ReadAllText(Upper(launch, "/tmp/unshare-error")));
            Assert.NotEqual("0", await ReadWhenWrittenAsync(launch, "/tmp/unshare-urm"));
            Assert.Equal("0", await ReadWhenWrittenAsync(launch, "/tmp/forked"));
            Assert.Equal("forked", File.ReadAllText(Upper(launch, "/tmp/forked-text")).Trim());
        }
        finally
        {
            await Driver.StopAsync(running, TimeSpan.FromSeconds(2), CancellationToken.None);
            Driver.Cleanup(launch.Id, launch.Directory);
        }

        AssertNothingLeft(launch);
    }

    [Fact]
    public async Task MemoryCap_Holds_AndTheEndIsReportedAsOutOfMemory()
    {
        // The shell holds 200 MB of text in a variable: the kernel kills it at the 32 MiB cap.
        var launch = Launch("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived > /tmp/survived; sleep 300", memoryMiB: 32);
        var running = await StartAsync(launch);
        var code = await Driver.WaitForExitAsync(running, new CancellationTokenSource(Deadline).Token);
        Assert.NotEqual(0, code);
        Assert.Equal("out of memory (limit 32 MiB)", Driver.WhyEnded(running, launch));
        Assert.False(File.Exists(Upper(launch, "/tmp/survived")));
        await Driver.StopAsync(running, TimeSpan.FromSeconds(1), CancellationToken.None);
        Driver.Cleanup(launch.Id, launch.Directory);
        AssertNothingLeft(launch);
    }

    [Fact]
    public async Task AgentRestart_AdoptsTheRunningContainer_AndItsStopTakesASetsidChildWithIt()
    {
        var launch = Launch("setsid sleep 300 & echo started > /tmp/started; exec sleep 300");
        var running = await StartAsync(launch);
        await ReadWhenWrittenAsync(launch, "/tmp/started");
        var tasks = _cgroups!.Tasks(launch.Id);
        Assert.True(tasks.Count >= 2, $"expected the entry point and its setsid child, found {tasks.Count}");

        // A new driver over the same state, as a restarted agent makes: it finds the container by runc state.
        var adopter = ContainerDriver.Open(_directory.Path, _cgroups, TimeProvider.System, out _)!;
        Assert.True(adopter.IsRunning(launch.Id, running.Pid, running.StartTime));
        Assert.False(adopter.IsRunning(launch.Id, running.Pid, running.StartTime + 1));
        var adopted = new RunningProcess(running.Pid, running.StartTime, null, launch.Id);

        await adopter.StopAsync(adopted, TimeSpan.FromSeconds(2), CancellationToken.None);
        adopter.Cleanup(launch.Id, launch.Directory);

        Assert.All(tasks, pid => Assert.False(File.Exists($"/proc/{pid}/cmdline") && File.ReadAllText($"/proc/{pid}/cmdline").StartsWith("sleep"), $"task {pid} outlived its container"));
        AssertNothingLeft(launch);
        await running.Child!.WaitForExitAsync();
    }

    [Fact]
    public async Task ACrashedEntryPoint_ReportsItsExitCode_AndRestartsInTheSameDisk()
    {
        var launch = Launch("echo run >> /tmp/runs; exit 7");
        var first = await StartAsync(launch);
        Assert.Equal(7, await Driver.WaitForExitAsync(first, new CancellationTokenSource(Deadline).Token));
        await Driver.StopAsync(first, TimeSpan.FromSeconds(1), CancellationToken.None);
        var second = await StartAsync(launch);
        Assert.Equal(7, await Driver.WaitForExitAsync(second, new CancellationTokenSource(Deadline).Token));
        await Driver.StopAsync(second, TimeSpan.FromSeconds(1), CancellationToken.None);
        Assert.Equal(["run", "run"], File.ReadAllLines(Upper(launch, "/tmp/runs")));
        Driver.Cleanup(launch.Id, launch.Directory);
        AssertNothingLeft(launch);
    }

    [Fact]
    public async Task AStartupTask_RunsInsideTheContainer_BeforeTheEntryPoint()
    {
        var launch = Launch("cat /tmp/prepared > /tmp/seen; exec sleep 300") with { };
        launch = launch with { Role = launch.Role with { Startup = [new StartupTask("/bin/sh", ["-c", "id -u > /tmp/prepared"], StartupTaskType.Simple)] } };
        Driver.PrepareDisk(launch);
        Assert.Equal(0, await Driver.RunStartupTaskAsync(launch, launch.Role.Startup[0], 1, CancellationToken.None));
        var running = await Driver.StartAsync(launch, CancellationToken.None);
        Assert.Equal(Service.Uid.ToString(), await ReadWhenWrittenAsync(launch, "/tmp/seen"));
        await Driver.StopAsync(running, TimeSpan.FromSeconds(2), CancellationToken.None);
        Driver.Cleanup(launch.Id, launch.Directory);
        AssertNothingLeft(launch);
    }
}
