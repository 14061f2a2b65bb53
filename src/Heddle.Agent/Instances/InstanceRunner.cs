using Heddle.Agent.Drivers;
using Heddle.Agent.Logs;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Api;
using Heddle.Model.Definition;

namespace Heddle.Agent.Instances;

/// <summary>
/// One instance's life on this node, as a loop: prepare the launch (<see cref="LaunchPreparation"/>: package, folder,
/// environment, heddle-instance.json), run it (<see cref="InstanceRun"/>: startup tasks, entry point, probes); when it
/// crashes or fails its liveness probe, restart it after <see cref="RestartBackoff"/> (1 s doubling to 5 min, back to
/// 1 s once it has run for a minute). Every state change is reported (<see cref="InstanceReporting"/>).
/// </summary>
public sealed class InstanceRunner
{
    private readonly AgentContext _context;
    private readonly Action _journalChanged;
    private readonly CancellationTokenSource _stop = new();
    private readonly RunnerState _state;
    private readonly InstanceReporting _reporting;
    private readonly InstanceDescription _description;
    private readonly LaunchPreparation _preparation;
    private readonly InstanceRun _run;
    private Task? _loop;
    private volatile bool _detached;
    private TimeSpan? _grace;

    public InstanceRunner(InstanceGoal goal, string specKey, AgentContext context, JournalEntry? adopted, Action<InstanceReport> report, Action journalChanged)
    {
        _context = context;
        _journalChanged = journalChanged;
        _state = new RunnerState(goal, specKey, context.Drivers.GetValueOrDefault(adopted?.Driver ?? DriverNames.Process) ?? context.Drivers[DriverNames.Process]);
        _reporting = new InstanceReporting(_state, report, adopted?.Restarts ?? 0);
        _description = new InstanceDescription(_state, context.Options);
        _preparation = new LaunchPreparation(context, _state, _reporting, _description, adopted, journalChanged);
        _run = new InstanceRun(context, _state, _reporting, journalChanged);
    }

    /// <summary>The goal it runs: replaced (same spec key) when only its peers, settings or revision label change.</summary>
    public InstanceGoal Goal => _state.Goal;

    public string Id => _state.Id;

    public string SpecKey => _state.SpecKey;

    public string? Directory => _state.Directory;

    /// <summary>Starts supervising; a runner stopped before it was started (replaced while it waited for its predecessor) never starts.</summary>
    public void Start()
    {
        lock (_state.Lock)
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
        lock (_state.Lock)
        {
            var current = _state.Goal;
            settingsChanged = !SameSettings(current, goal);
            revisionChanged = current.Revision != goal.Revision;
            changed = settingsChanged || revisionChanged || !_state.Peers.SequenceEqual(goal.Peers);
            if (!changed)
            {
                return;
            }

            _state.Goal = goal;
            _state.Peers = [.. goal.Peers];
            if (settingsChanged && _state.Described is { } described)
            {
                _state.Described = described with { Environment = InstanceEnvironment.For(described.Role, goal, _state.Ports, _context.Options) };
            }

            launch = _state.Described;
            running = _state.Running;
        }

        try
        {
            if (launch is not null)
            {
                _description.Write(launch);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The instance is going away (its directory with it); the next start writes the file afresh.
        }

        if (settingsChanged && running is not null)
        {
            _state.Driver.Signal(running, Posix.SIGHUP);
            _journalChanged(); // the journal remembers the settings the process now has
        }

        // Only what the controller tracks is reported: the revision it runs. New peers alone change nothing it records, and
        // reporting them made every Ready instance cost a report (a store write) from each of its role's other instances.
        if (settingsChanged || revisionChanged)
        {
            _reporting.ReportAgain();
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
        lock (_state.Lock)
        {
            loop = _loop;
        }

        if (loop is not null)
        {
            await loop;
        }
    }

    public InstanceReport Snapshot() => _reporting.Snapshot();

    /// <summary>What must be remembered to adopt the instance after an agent restart; null when nothing runs.</summary>
    public JournalEntry? JournalEntry() => _state.JournalEntry(_reporting.Restarts);

    /// <summary>What the instance writes changes no state of it, so its disk use is reported again when it has moved enough to matter.</summary>
    public void ReportIfDiskUseMoved() => _reporting.ReportIfDiskUseMoved();

    private async Task RunAsync()
    {
        var stop = _stop.Token;
        try
        {
            var launch = await _preparation.PrepareWithRetriesAsync(stop);
            if (launch is null)
            {
                await Task.Delay(Timeout.Infinite, stop);
                return;
            }

            var backoff = new RestartBackoff(_context.Options.RestartBackoff, _context.Time);
            while (!stop.IsCancellationRequested)
            {
                backoff.Started();
                string? reason;
                lock (_state.Lock)
                {
                    launch = _state.Described ?? launch; // settings reloaded meanwhile start the next run with their environment
                }

                try
                {
                    if (backoff.Failures > 0 && _state.Running is null)
                    {
                        // A restart sets up again what the run needs (each step is idempotent): a disk that was unmounted or an
                        // app/ that went missing since the first run comes back, rather than every restart failing the same way.
                        _preparation.PrepareDirectory(launch);
                    }

                    reason = await _run.RunOnceAsync(launch, stop);
                }
                catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
                {
                    // A fault of the runner itself (a probe, the file system): reported, and retried like a crash.
                    reason = $"the agent could not supervise it ({e.GetType().Name}: {e.Message})";
                    await _run.StopProcessAsync(TimeSpan.FromSeconds(1));
                }

                if (reason is null)
                {
                    return;
                }

                var delay = backoff.Failed();
                var restarts = _reporting.Restarting(reason, LogTail.LastLine(launch.StderrPath));
                _reporting.Report(InstanceStates.Faulted, $"{reason}; restarting in {delay.TotalSeconds:0.#} s (restart {restarts})");
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

    private async Task ShutDownAsync()
    {
        if (_detached)
        {
            return; // the process runs on; the journal still names it for the next agent
        }

        _reporting.Report(InstanceStates.Stopping, null);
        await _run.StopProcessAsync(_grace ?? _context.Options.StopGracePeriod);
        _state.Driver.Cleanup(Id, _state.Directory);
        _context.Ports.Release(_state.Ports.Values);
        _reporting.Report(InstanceStates.Stopped, null);
        _journalChanged();
    }
}
