using System.Diagnostics;
using Heddle.Agent.Drivers;
using Heddle.Agent.Isolation;
using Heddle.Model.Definition;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Drivers;

/// <summary>
/// The process driver as root (as CI runs), against a role that tries to choose what runs before privileges are
/// dropped: files named like every program on the launch path in its working folder, and PATH, LD_PRELOAD,
/// LD_LIBRARY_PATH, BASH_ENV, ENV and IFS in its environment (validation refuses LD_*, but the agent must not depend
/// on it). A preloaded library and every planted program record the uid they ran as; none may have run as root.
/// Then what two instances of different services share: nothing in /tmp, /dev/shm or /proc, and a disk each.
/// </summary>
public sealed class LaunchPrivilegeTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private static readonly Identity Alice = new(264_901, 264_901);
    private static readonly Identity Bob = new(264_902, 264_902);
    private static readonly string[] Planted = ["setsid", "sh", "taskset", "setpriv", "unshare", "mount", "env", "id", "cat", "dash", "bash", "ld.so"];

    private readonly TempDirectory _directory = new("heddle-privilege-");
    private readonly Cgroups? _cgroups;
    private readonly ProcessDriver _driver;
    private readonly string _markers;
    private readonly List<(RunningProcess Running, InstanceLaunch Launch)> _started = [];

    public LaunchPrivilegeTests()
    {
        File.SetUnixFileMode(_directory.Path, StateFolders.PassThrough);
        _cgroups = Cgroups.Open("privilege", _directory.Path, out var unavailable);
        _driver = new ProcessDriver(_cgroups, unavailable, TimeProvider.System);
        _markers = _directory.Combine("markers");
        Directory.CreateDirectory(_markers);
        File.SetUnixFileMode(_markers, (UnixFileMode)0b1_111_111_111);
    }

    public void Dispose()
    {
        foreach (var (running, launch) in _started)
        {
            _driver.StopAsync(running, TimeSpan.FromSeconds(1), CancellationToken.None).GetAwaiter().GetResult();
            _driver.Cleanup(launch.Id, launch.Directory);
        }

        _driver.ReleaseHost();
        UserNamespaces.Release(Alice.Uid);
        UserNamespaces.Release(Bob.Uid);
        _directory.Dispose();
    }

    /// <summary>A role folder holding a script named like each program of the launch path: each records its uid and exits.</summary>
    private string HostileRoleFolder()
    {
        var role = _directory.Combine("role-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(role);
        foreach (var name in Planted)
        {
            var file = Path.Combine(role, name);
            File.WriteAllText(file, $"#!/bin/sh\n/usr/bin/id -u > {_markers}/planted-{name}-$$\n");
            File.SetUnixFileMode(file, (UnixFileMode)0b111_101_101);
        }

        File.WriteAllText(Path.Combine(role, "rc"), $"/usr/bin/id -u > {_markers}/env-file-$$\n");
        return role;
    }

    private InstanceLaunch Launch(string role, string script, Identity owner, IReadOnlyDictionary<string, string>? environment = null, int diskMiB = RoleSize.DefaultDiskMiB)
    {
        var id = $"test/priv/{Guid.NewGuid():N}"[..24];
        var directory = _directory.Combine("instances", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(directory, "logs"));
        File.SetUnixFileMode(Path.GetDirectoryName(directory)!, StateFolders.PassThrough);
        File.SetUnixFileMode(directory, StateFolders.PassThrough);
        var variables = new Dictionary<string, string>(environment ?? new Dictionary<string, string>()) { ["HEDDLE_INSTANCE"] = id };
        return new InstanceLaunch
        {
            Id = id,
            Role = new RoleDefinition { Name = "priv", EntryPoint = new EntryPoint("/bin/sh", ["-c", script]), Size = new RoleSize(1, 128) { DiskMiB = diskMiB } },
            Directory = directory,
            RoleDirectory = role,
            RealCpus = [0],
            MemoryMiB = 128,
            Environment = variables,
            RunAs = owner,
        };
    }

    private RunningProcess Start(InstanceLaunch launch)
    {
        _driver.PrepareDisk(launch);
        var running = _driver.Start(launch);
        _started.Add((running, launch));
        return running;
    }

    private static async Task<string> ReadWhenWrittenAsync(string file)
    {
        await Poll.UntilAsync(() => File.Exists(file) && File.ReadAllText(file).EndsWith('\n'), Deadline, $"{file} to be written");
        return File.ReadAllText(file).Trim();
    }

    /// <summary>A library whose constructor records the uid of every program it is loaded into (built with the host's cc).</summary>
    private string BuildPreloadLibrary()
    {
        var source = _directory.Combine("evil.c");
        File.WriteAllText(source, $$"""
            #include <stdio.h>
            #include <unistd.h>
            __attribute__((constructor)) static void record(void) {
                char path[512];
                snprintf(path, sizeof path, "{{_markers}}/preload-%d", (int)getpid());
                FILE *f = fopen(path, "w");
                if (f) { fprintf(f, "%d\n", (int)geteuid()); fclose(f); }
            }
            """);
        var library = _directory.Combine("lib", "libheddleevil.so");
        Directory.CreateDirectory(Path.GetDirectoryName(library)!);
        var cc = Process.Start(new ProcessStartInfo("cc", ["-shared", "-fPIC", "-o", library, source]) { RedirectStandardError = true })!;
        var error = cc.StandardError.ReadToEnd();
        cc.WaitForExit();
        Assert.True(cc.ExitCode == 0, $"cc could not build the preload library: {error}");
        File.SetUnixFileMode(Path.GetDirectoryName(library)!, StateFolders.Shared);
        File.SetUnixFileMode(library, (UnixFileMode)0b111_101_101);
        return library;
    }

    private IReadOnlyList<(string Marker, string Uid)> Markers() =>
        [.. Directory.EnumerateFiles(_markers).Select(f => (Path.GetFileName(f), File.ReadAllText(f).Trim()))];

    [Theory]
    [InlineData("absolute")]
    [InlineData("library-path")]
    public async Task Start_RoleEnvironmentAndPlantedPrograms_NothingRunsAsRoot(string preload)
    {
        Assert.True(Posix.IsRoot, "the isolation tests run as root, as CI does");
        var library = BuildPreloadLibrary();
        var role = HostileRoleFolder();
        var environment = new Dictionary<string, string>
        {
            ["PATH"] = ".",
            ["LD_PRELOAD"] = preload == "absolute" ? library : Path.GetFileName(library),
            ["LD_LIBRARY_PATH"] = Path.GetDirectoryName(library)!,
            ["BASH_ENV"] = "./rc",
            ["ENV"] = "./rc",
            ["IFS"] = "/e",
        };
        var launch = Launch(role, "/usr/bin/id -u > uid; echo \"$PATH|$LD_PRELOAD\" > seen; exec /bin/sleep 300", Alice, environment);

        Start(launch);

        // The entry point ran, as the service's uid, with the role's environment for itself.
        Assert.Equal(Alice.Uid.ToString(), await ReadWhenWrittenAsync(Path.Combine(launch.WorkingDirectory, "uid")));
        Assert.StartsWith(".|", await ReadWhenWrittenAsync(Path.Combine(launch.WorkingDirectory, "seen")));
        // The library was loaded into the instance's own programs (so the attempt was real), never into one run as root.
        var markers = Markers();
        Assert.Contains(markers, m => m.Marker.StartsWith("preload-", StringComparison.Ordinal) && m.Uid == Alice.Uid.ToString());
        Assert.True(markers.All(m => m.Uid != "0"), "ran as root: " + string.Join(", ", markers.Where(m => m.Uid == "0").Select(m => m.Marker)));
        Assert.DoesNotContain(markers, m => m.Marker.StartsWith("planted-", StringComparison.Ordinal) && m.Uid == "0");
    }

    [Fact]
    public async Task TwoServices_ShareNoTmpShmOrProc_NeitherCanMakeAUserNamespace_AndTheEnvironmentFileIsTheirsAlone()
    {
        Assert.True(Posix.IsRoot, "the isolation tests run as root, as CI does");
        var role = _directory.Combine("plain");
        Directory.CreateDirectory(role);
        var alice = Launch(role, "echo alice > /tmp/secret; echo alice > /dev/shm/secret; echo $$ > pid; exec /bin/sleep 300", Alice,
            new Dictionary<string, string> { ["PASSWORD"] = "alice-secret" });
        var alicePid = Start(alice).Pid;
        await ReadWhenWrittenAsync(Path.Combine(alice.WorkingDirectory, "pid"));
        var bob = Launch(role, $$"""
            ls /tmp > tmp.txt; echo end >> tmp.txt
            ls /dev/shm > shm.txt; echo end >> shm.txt
            ls /proc | grep -c '^[0-9]' > processes.txt
            (test -e /proc/{{alicePid}} && echo visible || echo hidden) > alice-pid.txt
            (cat {{alice.Directory}}/environment > /dev/null 2>&1 && echo read || echo refused) > env.txt
            (/usr/bin/unshare -Urm /bin/true 2>/dev/null && echo created || echo refused) > userns.txt
            (ls {{InstanceMounts.Tmp(alice.Directory)}} > /dev/null 2>&1 && echo listed || echo refused) > alice-tmp.txt
            exec /bin/sleep 300
            """, Bob);
        Start(bob);

        Assert.Equal("end", await ReadWhenWrittenAsync(Path.Combine(bob.WorkingDirectory, "tmp.txt")));
        Assert.Equal("end", await ReadWhenWrittenAsync(Path.Combine(bob.WorkingDirectory, "shm.txt")));
        Assert.Equal("hidden", await ReadWhenWrittenAsync(Path.Combine(bob.WorkingDirectory, "alice-pid.txt")));
        Assert.Equal("refused", await ReadWhenWrittenAsync(Path.Combine(bob.WorkingDirectory, "env.txt")));
        Assert.Equal("refused", await ReadWhenWrittenAsync(Path.Combine(bob.WorkingDirectory, "userns.txt")));
        Assert.Equal("refused", await ReadWhenWrittenAsync(Path.Combine(bob.WorkingDirectory, "alice-tmp.txt")));
        Assert.True(int.Parse(await ReadWhenWrittenAsync(Path.Combine(bob.WorkingDirectory, "processes.txt"))) <= 4, "bob sees other uids' processes");
        // Alice's /tmp is on her disk; nothing of it reached the host's /tmp or /dev/shm.
        Assert.Equal("alice", File.ReadAllText(Path.Combine(InstanceMounts.Tmp(alice.Directory), "secret")).Trim());
        Assert.False(File.Exists("/dev/shm/secret"));
    }

    [Fact]
    public async Task Disk_KeepsWhatTheInstanceWrote_AcrossARestart_AndAHostRestartThatUnmountedIt()
    {
        Assert.True(Posix.IsRoot, "the isolation tests run as root, as CI does");
        var role = _directory.Combine("plain");
        Directory.CreateDirectory(role);
        var first = Launch(role, "echo kept > note; echo kept > /tmp/note; echo done > done.txt; exec /bin/sleep 300", Alice, diskMiB: 32);
        var running = Start(first);
        await ReadWhenWrittenAsync(Path.Combine(first.WorkingDirectory, "done.txt"));
        await _driver.StopAsync(running, TimeSpan.FromSeconds(1), CancellationToken.None);
        _started.Clear();

        // As after a host restart: nothing mounted any more, the image still there.
        InstanceMounts.Remove(first.Directory);
        Posix.UnmountAll(InstanceDisk.MountPoint(first.Directory));
        Assert.False(Directory.Exists(first.WorkingDirectory));
        var again = first with { Role = first.Role with { EntryPoint = new EntryPoint("/bin/sh", ["-c", "cat note /tmp/note > seen.part; mv seen.part seen.txt; exec /bin/sleep 300"]) } };
        Start(again);

        Assert.Equal("kept\nkept", await ReadWhenWrittenAsync(Path.Combine(again.WorkingDirectory, "seen.txt")));
    }

    [Fact]
    public async Task Disk_WritingPastItsSize_FailsForThatInstanceAlone_AndCleanupLeavesNoMount()
    {
        Assert.True(Posix.IsRoot, "the isolation tests run as root, as CI does");
        var role = _directory.Combine("plain");
        Directory.CreateDirectory(role);
        var launch = Launch(role, """
            (dd if=/dev/zero of=big bs=1M count=64 2>/dev/null && echo wrote || echo full) > app.txt
            (dd if=/dev/zero of=/tmp/big bs=1M count=64 2>/dev/null && echo wrote || echo full) > tmp.txt
            rm -f big /tmp/big
            echo small > after.txt
            exec /bin/sleep 300
            """, Alice, diskMiB: 32);
        var running = Start(launch);

        Assert.Equal("full", await ReadWhenWrittenAsync(Path.Combine(launch.WorkingDirectory, "app.txt")));
        Assert.Equal("full", await ReadWhenWrittenAsync(Path.Combine(launch.WorkingDirectory, "tmp.txt")));
        Assert.Equal("small", await ReadWhenWrittenAsync(Path.Combine(launch.WorkingDirectory, "after.txt")));
        var usage = InstanceDisk.Usage(launch.Directory);
        Assert.NotNull(usage);
        Assert.InRange(usage.Value.Size, 20L << 20, 32L << 20);

        await _driver.StopAsync(running, TimeSpan.FromSeconds(1), CancellationToken.None);
        _driver.Cleanup(launch.Id, launch.Directory);
        _started.Clear();

        Assert.DoesNotContain(File.ReadAllLines("/proc/mounts"), l => l.Contains(launch.Directory, StringComparison.Ordinal));
        Assert.False(File.Exists(InstanceDisk.ImageFile(launch.Directory)));
    }
}
