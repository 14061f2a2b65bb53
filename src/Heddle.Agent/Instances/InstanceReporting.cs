using Heddle.Contracts.Agents;
using Heddle.Contracts.Api;

namespace Heddle.Agent.Instances;

/// <summary>
/// What the controller is told about one instance: its state and the reason, its restarts and last failure (with the
/// last line it wrote to stderr), its pid, ports and disk use. Every state change is reported whole.
/// </summary>
internal sealed class InstanceReporting(RunnerState state, Action<InstanceReport> report, int restarts)
{
    private string _state = InstanceStates.Pending;
    private string? _reason;
    private int _restarts = restarts;
    private string? _failure;
    private string? _lastStderr;
    private int _reportedDiskMiB;

    /// <summary>The state last reported.</summary>
    public string State
    {
        get
        {
            lock (state.Lock)
            {
                return _state;
            }
        }
    }

    /// <summary>How often the instance was started again after a failure (carried over from the journal when adopted).</summary>
    public int Restarts
    {
        get
        {
            lock (state.Lock)
            {
                return _restarts;
            }
        }
    }

    /// <summary>Reports a new state, with the reason when there is one.</summary>
    public void Report(string newState, string? reason)
    {
        lock (state.Lock)
        {
            _state = newState;
            _reason = reason;
        }

        var snapshot = Snapshot();
        _reportedDiskMiB = snapshot.DiskUsedMib;
        report(snapshot);
    }

    /// <summary>Reports the instance as it stands (a new revision or settings, no new state).</summary>
    public void ReportAgain() => report(Snapshot());

    /// <summary>Records a failed run that is to be restarted: why it ended and its last stderr line; returns the restarts so far.</summary>
    public int Restarting(string failure, string? lastStderr)
    {
        lock (state.Lock)
        {
            _restarts++;
            _failure = failure;
            _lastStderr = lastStderr;
            return _restarts;
        }
    }

    public InstanceReport Snapshot()
    {
        InstanceReport snapshot;
        string? directory;
        lock (state.Lock)
        {
            var goal = state.Goal;
            snapshot = new InstanceReport
            {
                InstanceId = goal.InstanceId, State = _state, Reason = _reason ?? string.Empty, Pid = state.Running?.Pid ?? 0, Restarts = _restarts, Generation = goal.Generation,
                Revision = goal.Revision, Failure = _failure ?? string.Empty, LastStderr = _lastStderr ?? string.Empty,
            };
            foreach (var (name, port) in state.Ports)
            {
                snapshot.Ports[name] = port;
            }

            directory = state.Directory;
        }

        // Read outside the lock: it is I/O (the mount table, statfs), and reports must not wait on it.
        if (directory is not null && state.Driver.DiskUsage(directory) is { } disk)
        {
            (snapshot.DiskUsedMib, snapshot.DiskSizeMib) = ((int)(disk.Used >> 20), (int)(disk.Size >> 20));
        }

        return snapshot;
    }

    /// <summary>What the instance writes changes no state of it, so its disk use is reported again when it has moved enough to matter.</summary>
    public void ReportIfDiskUseMoved()
    {
        var snapshot = Snapshot();
        if (snapshot.DiskSizeMib > 0 && Math.Abs(snapshot.DiskUsedMib - _reportedDiskMiB) >= Math.Max(1, snapshot.DiskSizeMib / 100))
        {
            _reportedDiskMiB = snapshot.DiskUsedMib;
            report(snapshot);
        }
    }
}
