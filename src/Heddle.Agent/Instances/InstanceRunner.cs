using System.Text.Json;
using Heddle.Agent.Drivers;
using Heddle.Agent.Probes;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Api;
using Heddle.Model.Definition;
using Heddle.Model.Validation;

namespace Heddle.Agent.Instances;

/// <summary>
/// One instance's life on this node, as a loop: fetch the package, prepare the instance folder, run the startup
/// tasks, start the entry point, probe it; when it crashes or fails its liveness probe, restart it with exponential
/// backoff (1 s doubling to 5 min, back to 1 s once it has run for a minute). Every state change is reported.
/// </summary>
public sealed class InstanceRunner
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan StableAfter = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan StartingProbeInterval = TimeSpan.FromMilliseconds(50);
    private static readonly JsonSerializerOptions DescriptionFormat = new() { WriteIndented = true };

    private readonly AgentContext _context;
    private readonly Action<InstanceReport> _report;
    private readonly Action _journalChanged;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private JournalEntry? _adopted;
    private Task? _loop;
    private volatile bool _detached;
    private string _state = InstanceStates.Pending;
    private string? _reason;
    private int _restarts;
    private RunningProcess? _running;
    private Dictionary<string, int> _ports = [];
    private string? _directory;
    private IReadOnlyList<Peer> _peers;
    private InstanceLaunch? _described;
    private readonly Lock _descriptionFile = new();
    private InstanceGoal _goal;
    private string? _failure;
    private string? _lastStderr;
    private IInstanceDriver _driver;
    private TimeSpan? _grace;

    public InstanceRunner(InstanceGoal goal, string specKey, AgentContext context, JournalEntry? adopted, Action<InstanceReport> report, Action journalChanged)
    {
        _goal = goal;
        SpecKey = specKey;
        _context = context;
        _adopted = adopted;
        _report = report;
        _journalChanged = journalChanged;
        _restarts = adopted?.Restarts ?? 0;
        _peers = [.. goal.Peers];
        _driver = context.Drivers.GetValueOrDefault(adopted?.Driver ?? "process") ?? context.Drivers["process"];
    }

    /// <summary>The goal it runs: replaced (same spec key) when only its peers, settings or revision label change.</summary>
    public InstanceGoal Goal
    {
        get
        {
            lock (_lock)
            {
                return _goal;
            }
        }
    }

    public string Id => Goal.InstanceId;

    public string SpecKey { get; }

    public string? Directory => _directory;

    /// <summary>Starts supervising; a runner stopped before it was started (replaced while it waited for its predecessor) never starts.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (!_stop.IsCancellationRequested)
            {
                _loop = Task.Run(RunAsync);
            }
        }
    }

    /// <summary>
    /// Takes a newer goal with the same spec key: the instance keeps running. New peers or new settings rewrite its
    /// heddle-instance.json (whole, by rename) so it can re-read them; new settings are also signalled with SIGHUP
    /// (its role asked for `onSettingsChange: signal`). The new revision is reported once the file is written and the
    /// signal sent, so the controller's health gate sees it only after the instance could have reloaded.
    /// </summary>
    public void Update(InstanceGoal goal)
    {
        InstanceLaunch? launch;
        RunningProcess? running;
        bool settingsChanged, revisionChanged, changed;
        lock (_lock)
        {
            settingsChanged = !SameSettings(_goal, goal);
            revisionChanged = _goal.Revision != goal.Revision;
            changed = settingsChanged || revisionChanged || !_peers.SequenceEqual(goal.Peers);
            if (!changed)
            {
                return;
            }

            _goal = goal;
            _peers = [.. goal.Peers];
            if (settingsChanged && _described is not null)
            {
                _described = _described with { Environment = Environment(_described.Role) };
            }

            launch = _described;
            running = _running;
        }

        try
        {
            if (launch is not null)
            {
                WriteDescription(launch);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The instance is going away (its directory with it); the next start writes the file afresh.
        }

        if (settingsChanged && running is not null)
        {
            _driver.Signal(running, Posix.SIGHUP);
            _journalChanged(); // the journal remembers the settings the process now has
        }

        // Only what the controller tracks is reported: the revision it runs. New peers alone change nothing it records, and
        // reporting them made every Ready instance cost a report (a store write) from each of its role's other instances.
        if (settingsChanged || revisionChanged)
        {
            _report(Snapshot());
        }
    }

    private static bool SameSettings(InstanceGoal a, InstanceGoal b) =>
        a.Settings.Count == b.Settings.Count && a.Settings.All(s => b.Settings.TryGetValue(s.Key, out var v) && v == s.Value);

    /// <summary>Ends the runner but leaves the process running, for the next agent to adopt (an agent exiting).</summary>
    public async Task DetachAsync()
    {
        _detached = true;
        await StopAsync();
    }

    /// <summary>Stops the instance (SIGTERM, grace, SIGKILL) and waits until it is gone.</summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        _grace = grace;
        await _stop.CancelAsync();
        Task? loop;
        lock (_lock)
        {
            loop = _loop;
        }

        if (loop is not null)
        {
            await loop;
        }
    }

    public InstanceReport Snapshot()
    {
        InstanceReport report;
        string? directory;
        lock (_lock)
        {
            report = new InstanceReport
            {
                InstanceId = _goal.InstanceId, State = _state, Reason = _reason ?? string.Empty, Pid = _running?.Pid ?? 0, Restarts = _restarts, Generation = _goal.Generation,
                Revision = _goal.Revision, Failure = _failure ?? string.Empty, LastStderr = _lastStderr ?? string.Empty,
            };
            foreach (var (name, port) in _ports)
            {
                report.Ports[name] = port;
            }

            directory = _directory;
        }

        // Read outside the lock: it is I/O (the mount table, statfs), and reports must not wait on it.
        if (directory is not null && _driver.DiskUsage(directory) is { } disk)
        {
            (report.DiskUsedMib, report.DiskSizeMib) = ((int)(disk.Used >> 20), (int)(disk.Size >> 20));
        }

        return report;
    }

    /// <summary>What must be remembered to adopt the instance after an agent restart; null when nothing runs.</summary>
    public JournalEntry? JournalEntry()
    {
        lock (_lock)
        {
            return _running is { } r && _directory is not null ? new JournalEntry(_goal.InstanceId, SpecKey, _goal.Generation, r.Pid, r.StartTime, new(_ports), _directory, _restarts, SettingsKey(_goal), _driver.Name) : null;
        }
    }

    private async Task RunAsync()
    {
        var stop = _stop.Token;
        try
        {
            var launch = await PrepareWithRetriesAsync(stop);
            if (launch is null)
            {
                await Task.Delay(Timeout.Infinite, stop);
                return;
            }

            var failures = 0;
            while (!stop.IsCancellationRequested)
            {
                var startedAt = _context.Time.GetUtcNow();
                string? reason;
                lock (_lock)
                {
                    launch = _described ?? launch; // settings reloaded meanwhile start the next run with their environment
                }

                try
                {
                    if (failures > 0 && _running is null)
                    {
                        // A restart sets up again what the run needs (each step is idempotent): a disk that was unmounted or an
                        // app/ that went missing since the first run comes back, rather than every restart failing the same way.
                        PrepareDirectory(launch);
                    }

                    reason = await RunOnceAsync(launch, stop);
                }
                catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
                {
                    // A fault of the runner itself (a probe, the file system): reported, and retried like a crash.
                    reason = $"the agent could not supervise it ({e.GetType().Name}: {e.Message})";
                    await StopProcessAsync(TimeSpan.FromSeconds(1));
                }

                if (reason is null)
                {
                    return;
                }

                failures = _context.Time.GetUtcNow() - startedAt >= StableAfter ? 1 : failures + 1;
                var delay = TimeSpan.FromSeconds(Math.Min(MaxBackoff.TotalSeconds, _context.Options.RestartBackoff.TotalSeconds * Math.Pow(2, failures - 1)));
                var stderr = LastLine(launch.StderrPath);
                lock (_lock)
                {
                    _restarts++;
                    _failure = reason;
                    _lastStderr = stderr;
                }

                Report(InstanceStates.Faulted, $"{reason}; restarting in {delay.TotalSeconds:0.#} s (restart {_restarts})");
                await Task.Delay(delay, _context.Time, stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        finally
        {
            await ShutDownAsync();
        }
    }

    /// <summary>
    /// <see cref="PrepareAsync"/>, retried with the restart backoff when it fails (a full disk, a package evicted
    /// under it): the instance is reported Faulted with the reason meanwhile, never left Stopped for good.
    /// </summary>
    private async Task<InstanceLaunch?> PrepareWithRetriesAsync(CancellationToken stop)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await PrepareAsync(stop);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
            {
                var delay = TimeSpan.FromSeconds(Math.Min(MaxBackoff.TotalSeconds, _context.Options.RestartBackoff.TotalSeconds * Math.Pow(2, attempt - 1)));
                Report(InstanceStates.Faulted, $"preparing the instance failed ({e.GetType().Name}: {e.Message}); retrying in {delay.TotalSeconds:0.#} s");
                await Task.Delay(delay, _context.Time, stop);
            }
        }
    }

    /// <summary>Fetches the package and works out the launch; null (after reporting Faulted) when the goal cannot run.</summary>
    private async Task<InstanceLaunch?> PrepareAsync(CancellationToken stop)
    {
        if (_adopted is null)
        {
            Report(InstanceStates.Downloading, null);
        }

        Packages.CachedPackage package;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                package = await _context.Packages.GetAsync(Goal.PackageSha256, Goal.PackagePath, stop);
                break;
            }
            catch (Exception e) when (e is Packages.PackageCacheException or HttpRequestException or IOException && !stop.IsCancellationRequested)
            {
                Report(Unreachable(e) ? InstanceStates.Downloading : InstanceStates.Faulted,
                    $"package {Goal.PackageSha256[..12]} could not be fetched: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : string.Empty)}; retrying");
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, attempt)), _context.Time, stop);
            }
        }

        var role = package.Definition.FindRole(Goal.Role);
        if (role is null)
        {
            Report(InstanceStates.Faulted, $"the package has no role '{Goal.Role}'");
            return null;
        }

        var driverName = role.Driver == RoleDriver.Container ? "container" : "process";
        if (!_context.Drivers.TryGetValue(driverName, out var driver))
        {
            Report(InstanceStates.Faulted, $"this node cannot run the {driverName} driver ({_context.DriverUnavailable.GetValueOrDefault(driverName, "unknown driver")})");
            return null;
        }

        _driver = driver;
        string? imageRootfs = null;
        if (role.Driver == RoleDriver.Container)
        {
            for (var attempt = 1; imageRootfs is null; attempt++)
            {
                try
                {
                    imageRootfs = await _context.Images.GetAsync(Goal.ImageSha256, Goal.ImagePath, stop);
                }
                catch (Exception e) when (e is Packages.PackageCacheException or HttpRequestException or IOException && !stop.IsCancellationRequested)
                {
                    Report(Unreachable(e) ? InstanceStates.Downloading : InstanceStates.Faulted,
                        $"image {role.Image} ({Goal.ImageSha256[..Math.Min(12, Goal.ImageSha256.Length)]}) could not be fetched: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : string.Empty)}; retrying");
                    await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, attempt)), _context.Time, stop);
                }
            }
        }

        var adopted = _adopted;
        var reload = false;
        if (adopted is not null && _driver.IsRunning(adopted.Id, adopted.Pid, adopted.StartTime))
        {
            lock (_lock)
            {
                _ports = adopted.Ports;
                _directory = adopted.Directory;
                _running = new RunningProcess(adopted.Pid, adopted.StartTime, null, adopted.Id);
            }

            _context.Ports.Reserve(adopted.Ports.Values);
            // Settings changed (by a signalled reload) while no agent ran: the process gets the file and SIGHUP now.
            reload = adopted.SettingsKey is not null && adopted.SettingsKey != SettingsKey(Goal);
        }
        else
        {
            var ports = role.Endpoints.ToDictionary(e => e.Name, _ => _context.Ports.Allocate());
            lock (_lock)
            {
                _ports = ports;
                _directory = Path.Combine(_context.InstancesDirectory, Goal.Service, Goal.Role, $"{Goal.Index}-g{Goal.Generation}");
            }
        }

        _adopted = null;
        var launch = new InstanceLaunch
        {
            Id = Id,
            Role = role,
            Directory = _directory!,
            RoleDirectory = package.RoleDirectory(Goal.Role),
            ImageRootfs = imageRootfs,
            RealCpus = [.. Goal.Cpus.Select(_context.Topology.RealCpu)],
            MemoryMiB = Goal.MemoryMib,
            Environment = Environment(role),
            RunAs = _context.Uids?.Claim(Goal.Uid, Goal.Service),
        };
        if (_running is null)
        {
            PrepareDirectory(launch);
        }

        WriteDescription(launch);
        if (reload && _running is { } running)
        {
            _driver.Signal(running, Posix.SIGHUP);
            _journalChanged();
        }

        return launch;
    }

    /// <summary>
    /// A download that got no answer at all (the controller restarting, or another one being chosen): the instance is
    /// still Downloading, with the reason, not Faulted; a wrong or refused blob is a fault.
    /// </summary>
    private static bool Unreachable(Exception e) => e is HttpRequestException { StatusCode: null } || e.InnerException is HttpRequestException { StatusCode: null };

    private static string SettingsKey(InstanceGoal goal) =>
        string.Join(';', goal.Settings.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => $"{s.Key}={s.Value}"));

    /// <summary>Runs the instance until it ends; returns why it ended, or null when it was asked to stop.</summary>
    private async Task<string?> RunOnceAsync(InstanceLaunch launch, CancellationToken stop)
    {
        if (_running is null)
        {
            Report(InstanceStates.Starting, null);
            for (var i = 0; i < launch.Role.Startup.Count; i++)
            {
                var task = launch.Role.Startup[i];
                if (task.Type != StartupTaskType.Simple)
                {
                    continue;
                }

                var code = await _driver.RunStartupTaskAsync(launch, task, i + 1, stop);
                if (code != 0)
                {
                    return $"startup task {i + 1} ({task.Command}) exited with code {code}";
                }
            }

            var running = await _driver.StartAsync(launch, stop);
            lock (_lock)
            {
                _running = running;
            }

            _context.Metrics?.Started(restart: _restarts > 0);

            _journalChanged();
        }

        var process = _running!;
        var (probe, interval, threshold) = _context.Probes(launch.Role, _context.Options.Address, _ports, _context.ProbeClient);
        using var probing = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var exit = _driver.WaitForExitAsync(process, probing.Token);
        var failures = 0;
        var everReady = _state == InstanceStates.Ready;
        string? reason = null;
        while (!exit.IsCompleted)
        {
            var healthy = await probe.CheckAsync(stop);
            if (exit.IsCompleted)
            {
                break;
            }

            _context.Metrics?.Probed(healthy);

            if (healthy)
            {
                failures = 0;
                everReady = true;
                if (_state != InstanceStates.Ready)
                {
                    Report(InstanceStates.Ready, null);
                }
            }
            else if (everReady && ++failures >= threshold)
            {
                if (failures >= 2 * threshold)
                {
                    reason = $"failed its liveness probe ({probe.Description}) {failures} times in a row";
                    break;
                }

                if (_state != InstanceStates.Unhealthy)
                {
                    Report(InstanceStates.Unhealthy, $"probe {probe.Description} failed {failures} times in a row");
                }
            }

            var wait = everReady ? interval : StartingProbeInterval;
            await Task.WhenAny(exit, Task.Delay(wait, _context.Time, stop));
            stop.ThrowIfCancellationRequested();
        }

        if (reason is null)
        {
            var code = await exit;
            reason = _driver.WhyEnded(process, launch)
                ?? (code is null ? "exited (its exit code is unknown: it was adopted after an agent restart)" : $"exited with code {code}");
        }
        else
        {
            await probing.CancelAsync();
        }

        // Whatever is left of its process group goes before the restart.
        await _driver.StopAsync(process, TimeSpan.FromSeconds(1), CancellationToken.None);
        lock (_lock)
        {
            _running = null;
        }

        _journalChanged();
        return reason;
    }

    private async Task ShutDownAsync()
    {
        if (_detached)
        {
            return; // the process runs on; the journal still names it for the next agent
        }

        Report(InstanceStates.Stopping, null);
        await StopProcessAsync(_grace ?? _context.Options.StopGracePeriod);
        _driver.Cleanup(Id, _directory);
        _context.Ports.Release(_ports.Values);
        Report(InstanceStates.Stopped, null);
        _journalChanged();
    }

    private async Task StopProcessAsync(TimeSpan grace)
    {
        RunningProcess? running;
        lock (_lock)
        {
            running = _running;
        }

        if (running is not null)
        {
            await _driver.StopAsync(running, grace, CancellationToken.None);
        }

        lock (_lock)
        {
            _running = null;
        }
    }

    /// <summary>The last non-empty line of a log file (at most 200 characters), read from its last 4 KiB; null when there is none.</summary>
    internal static string? LastLine(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var length = (int)Math.Min(4096, file.Length);
            file.Seek(-length, SeekOrigin.End);
            var buffer = new byte[length];
            file.ReadExactly(buffer);
            var line = System.Text.Encoding.UTF8.GetString(buffer).Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.Length > 0);
            return line is null ? null : line.Length > 200 ? line[..200] + "…" : line;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private Dictionary<string, string> Environment(RoleDefinition role)
    {
        var goal = Goal;
        var env = new Dictionary<string, string>(role.Environment, StringComparer.Ordinal);
        env["HEDDLE_SERVICE"] = goal.Service;
        env["HEDDLE_ROLE"] = goal.Role;
        env["HEDDLE_INSTANCE"] = Id;
        env["HEDDLE_INDEX"] = goal.Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
        env["HEDDLE_UPGRADE_DOMAIN"] = goal.UpgradeDomain.ToString(System.Globalization.CultureInfo.InvariantCulture);
        env["HEDDLE_ADDRESS"] = _context.Options.Address;
        env["HEDDLE_NODE"] = _context.Options.NodeName;
        env["HEDDLE_CPUS"] = string.Join(',', goal.Cpus);
        foreach (var (name, port) in _ports)
        {
            env[$"HEDDLE_PORT_{Names.ToEnvironmentSuffix(name)}"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        foreach (var (name, value) in goal.Settings)
        {
            env[$"HEDDLE_SETTING_{Names.ToEnvironmentSuffix(name)}"] = value;
        }

        return env;
    }

    /// <summary>
    /// The instance folder and its logs (the agent's: the instance can neither replace its launch files nor plant a
    /// link where the agent writes its logs), then the driver's disk, before anything of the instance runs.
    /// </summary>
    private void PrepareDirectory(InstanceLaunch launch)
    {
        if (launch.RunAs is not null)
        {
            for (var dir = Path.GetDirectoryName(launch.Directory)!; dir.Length > _context.InstancesDirectory.Length; dir = Path.GetDirectoryName(dir)!)
            {
                Isolation.StateFolders.Create(dir, Isolation.StateFolders.PassThrough);
            }

            Isolation.StateFolders.Create(launch.Directory, Isolation.StateFolders.PassThrough);
            Isolation.StateFolders.Create(Path.Combine(launch.Directory, "logs"), Isolation.StateFolders.Private);
        }

        System.IO.Directory.CreateDirectory(Path.Combine(launch.Directory, "logs"));
        _driver.PrepareDisk(launch);
    }

    /// <summary>heddle-instance.json in the working directory: what the environment says, plus the role's peers.</summary>
    private void WriteDescription(InstanceLaunch launch)
    {
        if (!_driver.ReadsDescription)
        {
            lock (_lock)
            {
                _described = launch;
            }

            return;
        }

        lock (_descriptionFile)
        {
            IReadOnlyList<Peer> peers;
            Dictionary<string, int> ports;
            lock (_lock)
            {
                _described = launch;
                peers = _peers;
                ports = _ports;
            }

            var description = new
            {
                service = Goal.Service,
                role = Goal.Role,
                instance = Id,
                index = Goal.Index,
                upgradeDomain = Goal.UpgradeDomain,
                node = _context.Options.NodeName,
                address = _context.Options.Address,
                ports,
                settings = Goal.Settings,
                cpus = Goal.Cpus,
                memoryMiB = Goal.MemoryMib,
                environment = launch.Environment,
                peers = peers.Select(p => new
                {
                    instance = p.InstanceId,
                    index = p.Index,
                    upgradeDomain = p.UpgradeDomain,
                    node = p.Node,
                    address = p.Address,
                    ports = p.Ports.ToDictionary(),
                    ready = p.Ready,
                }),
            };
            // Written in the agent's own folder, then renamed to where the driver lets the instance read it.
            var partial = Path.Combine(launch.Directory, "heddle-instance.json.partial");
            File.WriteAllText(partial, JsonSerializer.Serialize(description, DescriptionFormat));
            _driver.PlaceDescription(launch, partial);
        }
    }

    private void Report(string state, string? reason)
    {
        lock (_lock)
        {
            _state = state;
            _reason = reason;
        }

        var snapshot = Snapshot();
        _reportedDiskMiB = snapshot.DiskUsedMib;
        _report(snapshot);
    }

    private int _reportedDiskMiB;

    /// <summary>What the instance writes changes no state of it, so its disk use is reported again when it has moved enough to matter.</summary>
    public void ReportIfDiskUseMoved()
    {
        var snapshot = Snapshot();
        if (snapshot.DiskSizeMib > 0 && Math.Abs(snapshot.DiskUsedMib - _reportedDiskMiB) >= Math.Max(1, snapshot.DiskSizeMib / 100))
        {
            _reportedDiskMiB = snapshot.DiskUsedMib;
            _report(snapshot);
        }
    }
}
