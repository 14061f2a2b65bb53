using System.Text.Json;
using Heddle.Agent.Isolation;
using Heddle.Model.Definition;

namespace Heddle.Agent.Drivers.Containers;

/// <summary>
/// The `container` driver: each instance is an OCI container run by runc. Its root file system is an overlay: the
/// role's files (at /app, the working directory) over the base image, both read-only lower layers shared by every
/// instance on the node, and the instance's own upper layer (its "differencing disk") where every write lands and
/// which goes with the instance. heddle-instance.json is bind-mounted read-only at /run/heddle (and linked from
/// /app). The entry point is PID 1 of its own pid namespace and runs as the service's uid; see <see cref="OciSpec"/>.
/// </summary>
public sealed class ContainerDriver : IInstanceDriver
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>How long runc may take to start a container (its pid file written) before it counts as having failed to.</summary>
    private static readonly TimeSpan StartLimit = TimeSpan.FromSeconds(30);

    /// <summary>How often the pid file is looked for while runc starts the container.</summary>
    private static readonly TimeSpan StartPoll = TimeSpan.FromMilliseconds(2);

    /// <summary>How often a stopping container is looked at.</summary>
    private static readonly TimeSpan StopPoll = TimeSpan.FromMilliseconds(20);

    private readonly Runc _runc;
    private readonly Cgroups _cgroups;
    private readonly OomWatch _oom;
    private readonly TimeProvider _time;

    private ContainerDriver(Runc runc, Cgroups cgroups, TimeProvider time)
    {
        _runc = runc;
        _cgroups = cgroups;
        _oom = new OomWatch(cgroups);
        _time = time;
    }

    public string Name => DriverNames.Container;

    /// <summary>
    /// The driver when this node can run containers: root, cgroups, runc on the PATH and an overlay mount that works in
    /// the agent's state folder (tried once, at start). Otherwise null and <paramref name="unavailable"/> says why. Its
    /// waits (a container starting, stopping, a runc call) run on <paramref name="time"/>, the agent's clock.
    /// </summary>
    internal static ContainerDriver? Open(string stateDirectory, Cgroups? cgroups, TimeProvider time, out string? unavailable)
    {
        unavailable = null;
        if (!Posix.IsRoot)
        {
            unavailable = "the agent is not root";
            return null;
        }

        if (cgroups is null)
        {
            unavailable = "instances cannot be placed in cgroups here";
            return null;
        }

        var runc = FindOnPath("runc");
        if (runc is null)
        {
            unavailable = "runc is not installed (apt-get install runc)";
            return null;
        }

        if (TryOverlay(Path.Combine(stateDirectory, "containers", "overlay-check")) is { } error)
        {
            unavailable = $"overlay mounts do not work here ({error})";
            return null;
        }

        var root = Path.Combine(stateDirectory, "runc");
        StateFolders.Create(root, StateFolders.Private);
        return new ContainerDriver(new Runc(runc, root, time), cgroups, time);
    }

    /// <summary>Stops whatever a killed agent's runc state still names (`heddle up` teardown); returns how many ran.</summary>
    internal static int StopLeftovers(string stateDirectory, IEnumerable<(string Instance, string Directory)> instances)
    {
        var runcBinary = FindOnPath("runc");
        var root = Path.Combine(stateDirectory, "runc");
        if (runcBinary is null || !Directory.Exists(root))
        {
            return 0;
        }

        var runc = new Runc(runcBinary, root, TimeProvider.System); // a teardown after the agent is gone: there is no agent clock to run on
        var stopped = 0;
        foreach (var (instance, directory) in instances)
        {
            if (runc.State(ContainerId(instance)) is { Status: "running" })
            {
                stopped++;
            }

            runc.Delete(ContainerId(instance));
            RemoveDisk(directory);
        }

        return stopped;
    }

    public void PrepareDisk(InstanceLaunch launch)
    {
        if (launch.RunAs is not { } owner)
        {
            throw new InvalidOperationException("the container driver runs instances as their service's uid, which needs a root agent");
        }

        if (launch.ImageRootfs is null)
        {
            throw new InvalidOperationException($"role {launch.Role.Name} runs in a container but its goal names no image");
        }

        var layer = RoleLayer(launch.RoleDirectory);
        var disk = Path.Combine(launch.Directory, "disk");
        var rootfs = Path.Combine(launch.Directory, "rootfs");
        if (Posix.IsMountPoint(rootfs))
        {
            return; // mounted by an earlier run of this instance: its upper layer is kept across restarts
        }

        var upper = Path.Combine(disk, "upper");
        var work = Path.Combine(disk, "work");
        // The upper layer lives on the instance's own disk: every write of the container (its /tmp included) counts there.
        InstanceDisk.Ensure(launch.Directory, launch.Role.Size.DiskMiB);
        File.SetUnixFileMode(disk, StateFolders.Private);
        Directory.CreateDirectory(work);
        if (!Directory.Exists(upper))
        {
            // The upper layer's root is the container's /: root's, 0755. /app in it is the service's (new files land
            // here; the package's own files stay root's and read-only); heddle-instance.json is a link to the bind mount.
            var staging = upper + ".partial";
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }

            Directory.CreateDirectory(Path.Combine(staging, "app"));
            File.SetUnixFileMode(staging, StateFolders.Shared);
            File.CreateSymbolicLink(Path.Combine(staging, "app", "heddle-instance.json"), "/run/heddle/heddle-instance.json");
            Posix.LChown(Path.Combine(staging, "app", "heddle-instance.json"), owner.Uid, owner.Gid);
            Posix.LChown(Path.Combine(staging, "app"), owner.Uid, owner.Gid);
            File.SetUnixFileMode(Path.Combine(staging, "app"), StateFolders.Private);
            Directory.Move(staging, upper);
        }

        var meta = Path.Combine(launch.Directory, "meta");
        Directory.CreateDirectory(meta);
        File.SetUnixFileMode(meta, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        Posix.LChown(meta, 0, owner.Gid);
        Directory.CreateDirectory(rootfs);
        foreach (var path in new[] { layer, launch.ImageRootfs, upper, work })
        {
            if (path.Contains(',') || path.Contains(':'))
            {
                throw new InvalidOperationException($"'{path}' holds ',' or ':', which an overlay mount cannot name; choose another --state");
            }
        }

        if (Posix.Mount("overlay", rootfs, "overlay", $"lowerdir={layer}:{launch.ImageRootfs},upperdir={upper},workdir={work}") is { } error)
        {
            throw new IOException($"mounting the container's root file system failed: {error}");
        }
    }

    public (long Used, long Size)? DiskUsage(string directory) => InstanceDisk.Usage(directory);

    public void PlaceDescription(InstanceLaunch launch, string partialFile)
    {
        var owner = launch.RunAs!;
        File.SetUnixFileMode(partialFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        Posix.LChown(partialFile, 0, owner.Gid);
        File.Move(partialFile, Path.Combine(launch.Directory, "meta", "heddle-instance.json"), overwrite: true);
    }

    public async Task<int> RunStartupTaskAsync(InstanceLaunch launch, StartupTask task, int number, CancellationToken cancellationToken)
    {
        var id = $"{ContainerId(launch.Id)}-s{number}";
        var process = await LaunchAsync(launch, id, [task.Command, .. task.Args], $"startup-{number}");
        try
        {
            await process.Child!.WaitForExitAsync(cancellationToken);
            return process.Child.ExitCode;
        }
        catch (OperationCanceledException)
        {
            await _runc.KillAsync(id, "KILL");
            throw;
        }
        finally
        {
            await process.Child!.WaitForExitAsync(CancellationToken.None);
            process.Child.Dispose();
            await _runc.DeleteAsync(id);
        }
    }

    public async Task<RunningProcess> StartAsync(InstanceLaunch launch, CancellationToken cancellationToken)
    {
        var background = launch.Role.Startup.Where(t => t.Type == StartupTaskType.Background).ToList();
        IReadOnlyList<string> args = background.Count == 0
            ? [launch.Role.EntryPoint.Command, .. launch.Role.EntryPoint.Args]
            : ["/bin/sh", "-c", string.Concat(background.Select(t => string.Join(' ', new[] { t.Command }.Concat(t.Args).Select(ProcessDriver.Quote)) + " & ")) + "exec \"$0\" \"$@\"",
                launch.Role.EntryPoint.Command, .. launch.Role.EntryPoint.Args];
        _oom.Started(launch.Id);
        return await LaunchAsync(launch, ContainerId(launch.Id), args, "main");
    }

    /// <summary>
    /// Writes the bundle and starts runc; returns once the container runs (its pid file is written) or runc has given up.
    /// Not cancellable: once runc is started the container may run, and only the pid this returns lets it be stopped.
    /// </summary>
    private async Task<RunningProcess> LaunchAsync(InstanceLaunch launch, string id, IReadOnlyList<string> args, string bundleName)
    {
        if (_runc.Knows(id))
        {
            await _runc.DeleteAsync(id); // a run that ended without its delete (an agent killed meanwhile)
        }

        var owner = launch.RunAs!;
        var bundle = Path.Combine(launch.Directory, "bundle", bundleName);
        StateFolders.Create(Path.Combine(launch.Directory, "bundle"), StateFolders.Private);
        Directory.CreateDirectory(bundle);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal) { ["PATH"] = HostPrograms.SafePath, ["HOME"] = "/app", ["LANG"] = "C.UTF-8" };
        foreach (var (name, value) in launch.Environment)
        {
            environment[name] = value;
        }

        var spec = new ContainerSpec
        {
            Hostname = Hostname(launch.Id),
            Rootfs = Path.GetFullPath(Path.Combine(launch.Directory, "rootfs")),
            Args = args,
            Environment = environment,
            Uid = owner.Uid,
            Gid = owner.Gid,
            CgroupsPath = _cgroups.RelativePath(launch.Id),
            Cpus = string.Join(',', launch.RealCpus.Distinct().Order()),
            Mems = _cgroups.Mems(),
            MemoryBytes = (long)launch.MemoryMiB << 20,
            LimitSwap = _cgroups.AccountsSwap,
            MaxProcesses = launch.Role.Size.MaxProcesses,
            SharedMemoryMiB = launch.SharedMemoryMiB,
            ReadOnlyBinds = [(Path.Combine(launch.Directory, "meta"), "/run/heddle")],
            OpenFiles = OpenFilesLimit.Value,
        };
        File.WriteAllText(Path.Combine(bundle, "config.json"), JsonSerializer.Serialize(OciSpec.For(spec), Indented));
        var pidFile = Path.Combine(bundle, "pid");
        File.Delete(pidFile);
        var runc = _runc.Run(id, bundle, pidFile, launch.StdoutPath, launch.StderrPath);
        var exited = runc.WaitForExitAsync();
        var since = _time.GetTimestamp();
        while (!runc.HasExited && _time.GetElapsedTime(since) < StartLimit)
        {
            if (ReadPid(pidFile) is { } pid && Posix.StartTime(pid) is { } started)
            {
                return new RunningProcess(pid, started, runc, launch.Id);
            }

            await Task.WhenAny(exited, Task.Delay(StartPoll, _time));
        }

        // runc refused or failed before the entry point ran: its exit (and its words in stderr.log) are the instance's.
        return new RunningProcess(runc.Id, 0, runc, launch.Id);
    }

    public bool IsRunning(string instanceId, int pid, long startTime) =>
        Posix.IsAlive(pid, startTime) && _runc.State(ContainerId(instanceId)) is { Status: "running" } state && state.Pid == pid;

    public Task<int?> WaitForExitAsync(RunningProcess running, CancellationToken cancellationToken) => running.WaitForExitAsync(cancellationToken);

    /// <summary>
    /// `runc kill TERM`, the grace period, `runc kill KILL` (PID 1's end takes every process of its pid namespace with
    /// it, setsid or not), then `runc delete`: the cgroups and runc's state go; the overlay stays for a restart.
    /// </summary>
    public async Task StopAsync(RunningProcess running, TimeSpan grace, CancellationToken cancellationToken)
    {
        var id = ContainerId(running.Instance);
        await _runc.KillAsync(id, "TERM");
        var since = _time.GetTimestamp();
        while (Running(running) && _time.GetElapsedTime(since) < grace)
        {
            await Task.Delay(StopPoll, _time, cancellationToken);
        }

        if (Running(running))
        {
            await _runc.KillAsync(id, "KILL");
            _cgroups.KillAll(running.Instance);
        }

        while (Running(running) && _time.GetElapsedTime(since) < grace + TimeSpan.FromSeconds(5))
        {
            await Task.Delay(StopPoll, _time, cancellationToken);
        }

        if (running.Child is { } child)
        {
            await child.WaitForExitAsync(cancellationToken);
        }

        await _runc.DeleteAsync(id);
    }

    private bool Running(RunningProcess running) => Posix.IsAlive(running.Pid, running.StartTime) || _cgroups.Tasks(running.Instance).Count > 0;

    public string? WhyEnded(RunningProcess process, InstanceLaunch launch) => _oom.WhyEnded(launch.Id, launch.MemoryMiB);

    public bool Signal(RunningProcess process, int signal) => Posix.IsAlive(process.Pid, process.StartTime) && Posix.Signal(process.Pid, signal);

    /// <summary>Deletes the container, unmounts its root file system and removes its upper layer and bundle; the logs stay.</summary>
    public void Cleanup(string instanceId, string? directory)
    {
        _runc.Delete(ContainerId(instanceId));
        _cgroups.Remove(instanceId);
        _oom.Forget(instanceId);
        if (directory is not null)
        {
            RemoveDisk(directory);
        }
    }

    public void ReleaseHost()
    {
    }

    private static void RemoveDisk(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }

        var rootfs = Path.Combine(directory, "rootfs");
        Posix.UnmountAll(rootfs);

        InstanceDisk.Remove(directory);
        foreach (var name in new[] { "rootfs", "disk", "bundle", "meta" })
        {
            try
            {
                var path = Path.Combine(directory, name);
                if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The sweep removes what is left with the logs.
            }
        }
    }

    /// <summary>
    /// The role's files as a lower layer: a folder holding app/ with hard links to the unpacked package's role folder
    /// (made once per package and role, beside the package, and evicted with it).
    /// </summary>
    internal static string RoleLayer(string roleDirectory)
    {
        var role = Path.GetFileName(roleDirectory.TrimEnd('/'));
        var package = Path.GetDirectoryName(Path.GetDirectoryName(roleDirectory.TrimEnd('/')))!;
        var layer = Path.Combine(package, ".layers", role);
        if (Directory.Exists(layer))
        {
            return layer;
        }

        var staging = $"{layer}.{Guid.NewGuid():N}.partial";
        try
        {
            LinkTree(roleDirectory, Path.Combine(staging, "app"));
            File.SetUnixFileMode(staging, StateFolders.Shared);
            try
            {
                Directory.Move(staging, layer);
            }
            catch (IOException) when (Directory.Exists(layer))
            {
                // Another instance of the role made it meanwhile.
            }
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }

        return layer;
    }

    private static void LinkTree(string source, string target)
    {
        Directory.CreateDirectory(target);
        File.SetUnixFileMode(target, StateFolders.Shared);
        foreach (var file in Directory.EnumerateFiles(source))
        {
            var destination = Path.Combine(target, Path.GetFileName(file));
            if (!Posix.HardLink(file, destination))
            {
                File.Copy(file, destination);
            }
        }

        foreach (var dir in Directory.EnumerateDirectories(source))
        {
            LinkTree(dir, Path.Combine(target, Path.GetFileName(dir)));
        }
    }

    /// <summary>runc's name for the instance's container: its id with '/' made '_'.</summary>
    internal static string ContainerId(string instanceId) => Cgroups.Safe(instanceId);

    /// <summary>hello/web/0 → hello-web-0 (at most 63 characters).</summary>
    internal static string Hostname(string instanceId)
    {
        var name = Cgroups.Safe(instanceId).Replace('_', '-');
        return name.Length > 63 ? name[..63] : name;
    }

    /// <summary>65536 open files, or the agent's own hard limit when lower (runc cannot raise it past that).</summary>
    private static readonly Lazy<int> OpenFilesLimit = new(() =>
    {
        try
        {
            var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
            var hard = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[4];
            return hard is null || hard == "unlimited" || !int.TryParse(hard, out var value) ? 65536 : Math.Min(65536, value);
        }
        catch (IOException)
        {
            return 1024;
        }
    });

    private static int? ReadPid(string file)
    {
        try
        {
            return int.TryParse(File.ReadAllText(file).Trim(), out var pid) && pid > 0 ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static string? FindOnPath(string name) =>
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static string? TryOverlay(string folder)
    {
        try
        {
            if (Directory.Exists(folder))
            {
                Posix.Unmount(Path.Combine(folder, "merged"));
                Directory.Delete(folder, recursive: true);
            }

            foreach (var part in new[] { "lower", "upper", "work", "merged" })
            {
                Directory.CreateDirectory(Path.Combine(folder, part));
            }

            var error = Posix.Mount("overlay", Path.Combine(folder, "merged"), "overlay",
                $"lowerdir={Path.Combine(folder, "lower")},upperdir={Path.Combine(folder, "upper")},workdir={Path.Combine(folder, "work")}");
            if (error is null)
            {
                Posix.Unmount(Path.Combine(folder, "merged"));
            }

            Directory.Delete(folder, recursive: true);
            return error;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }
}
