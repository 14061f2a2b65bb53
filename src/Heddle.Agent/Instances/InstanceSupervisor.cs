using Heddle.Agent.Drivers;
using Heddle.Contracts.Agents;
using Heddle.Model.Definition;
using Microsoft.Extensions.Logging;

namespace Heddle.Agent.Instances;

/// <summary>
/// Drives this node's instances toward the goal state: starts what is missing, stops what the goal no longer holds,
/// replaces what changed, and keeps everything else running untouched. At start it reads the journal so that
/// instances that outlived the previous agent process are adopted, not restarted, when the goal still wants them.
/// </summary>
public sealed class InstanceSupervisor : Connection.IGoalStateTarget
{
    private readonly AgentContext _context;
    private readonly InstanceJournal _journal;
    private readonly Action<InstanceReport> _report;
    private readonly Dictionary<string, InstanceRunner> _runners = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task> _stopping = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JournalEntry> _unclaimed;
    private readonly Lock _lock = new();

    public AgentContext Context => _context;

    public InstanceSupervisor(AgentContext context, InstanceJournal journal, Action<InstanceReport> report)
    {
        _context = context;
        _journal = journal;
        _report = report;
        _unclaimed = journal.Load().Where(e => Posix.IsAlive(e.Pid, e.StartTime)).ToDictionary(e => e.Id, StringComparer.Ordinal);
    }

    /// <summary>Instances found running from a previous agent process and not yet claimed by a goal state.</summary>
    public int UnclaimedCount
    {
        get
        {
            lock (_lock)
            {
                return _unclaimed.Count;
            }
        }
    }

    /// <summary>Reports again each instance whose disk use moved since it was last reported (by 1% of the disk, at least 1 MiB).</summary>
    public void ReportDiskUse()
    {
        List<InstanceRunner> runners;
        lock (_lock)
        {
            runners = [.. _runners.Values];
        }

        runners.ForEach(r => r.ReportIfDiskUseMoved());
    }

    public IReadOnlyList<InstanceReport> Reports()
    {
        lock (_lock)
        {
            return [.. _runners.Values.Select(r => r.Snapshot())];
        }
    }

    public string? DirectoryOf(string instanceId)
    {
        lock (_lock)
        {
            return _runners.TryGetValue(instanceId, out var runner) ? runner.Directory : null;
        }
    }

    /// <summary>The folders of every instance this agent runs or has adopted (the sweep leaves them alone).</summary>
    public IReadOnlySet<string> KnownDirectories()
    {
        lock (_lock)
        {
            return _runners.Values.Select(r => r.Directory).OfType<string>().Concat(_unclaimed.Values.Select(e => e.Directory)).ToHashSet(StringComparer.Ordinal);
        }
    }

    public IReadOnlyList<string> RunningDirectories()
    {
        lock (_lock)
        {
            return [.. _runners.Values.Select(r => r.Directory).OfType<string>()];
        }
    }

    public void Apply(GoalState goal)
    {
        var desired = goal.Instances.ToDictionary(i => i.InstanceId, StringComparer.Ordinal);
        lock (_lock)
        {
            foreach (var runner in _runners.Values.ToList())
            {
                if (!desired.TryGetValue(runner.Id, out var wanted) || SpecKey(wanted) != runner.SpecKey)
                {
                    _context.Log.LogInformation("Stopping {Instance}: {Why} (goal state {Version})", runner.Id,
                        wanted is null ? "not in the goal state" : $"its spec changed from {runner.SpecKey} to {SpecKey(wanted)}", goal.Version);
                    _runners.Remove(runner.Id);
                    Stopping(runner.Id, StopAndForgetAsync(runner));
                }
                else
                {
                    runner.Update(wanted);
                }
            }

            foreach (var (id, wanted) in desired)
            {
                if (_runners.ContainsKey(id))
                {
                    continue;
                }

                var key = SpecKey(wanted);
                var adopted = _unclaimed.Remove(id, out var entry) && entry.SpecKey == key ? entry : null;
                if (entry is not null && adopted is null)
                {
                    Stopping(id + "#orphan", StopOrphanAsync(entry));
                }

                _context.Log.LogInformation("{Action} {Instance} ({Spec}; goal state {Version})", adopted is null ? "Starting" : "Adopting", id, key, goal.Version);
                var runner = new InstanceRunner(wanted, key, _context, adopted, _report, SaveJournal);
                _runners[id] = runner;
                var previous = Task.WhenAll(_stopping.GetValueOrDefault(id) ?? Task.CompletedTask, _stopping.GetValueOrDefault(id + "#orphan") ?? Task.CompletedTask);
                _ = previous.ContinueWith(_ => runner.Start(), TaskScheduler.Default);
            }

            foreach (var orphan in _unclaimed.Values.Where(e => !desired.ContainsKey(e.Id)).ToList())
            {
                _unclaimed.Remove(orphan.Id);
                Stopping(orphan.Id + "#orphan", StopOrphanAsync(orphan));
            }

        }

        _ = Task.WhenAll(SnapshotStopping()).ContinueWith(_ => Evict(), TaskScheduler.Default);
    }

    /// <summary>
    /// Removes the packages and images no instance of this agent wants any more. What is needed is read at eviction
    /// time, under the lock that creates runners, so an eviction scheduled for an older goal never removes what a
    /// newer one is starting from.
    /// </summary>
    private void Evict()
    {
        lock (_lock)
        {
            var goals = _runners.Values.Select(r => r.Goal).ToList();
            _context.Packages.Evict(goals.Select(g => g.PackageSha256).ToHashSet(StringComparer.Ordinal));
            _context.Images.Evict(goals.Select(g => g.ImageSha256).Where(s => s.Length > 0).ToHashSet(StringComparer.Ordinal));
        }
    }

    /// <summary>Ends supervision but leaves every instance running and journaled, for the next agent to adopt.</summary>
    public async Task DetachAllAsync()
    {
        List<InstanceRunner> runners;
        lock (_lock)
        {
            runners = [.. _runners.Values];
        }

        SaveJournal();
        await Task.WhenAll(runners.Select(r => r.DetachAsync()));
    }

    /// <summary>Stops every instance (for `heddle up`'s teardown and tests; a plain agent exit leaves them running).</summary>
    public Task StopAllAsync() => StopAllAsync(grace: null);

    /// <summary>How many instances this agent runs or has adopted.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _runners.Count + _unclaimed.Count;
            }
        }
    }

    /// <summary>
    /// Stops every instance at once (a short grace): the agent has lost the controller for longer than the node timeout,
    /// so the controller has given its instances to other nodes and the copies here must not serve beside them. A goal
    /// state that comes later starts what it asks for again.
    /// </summary>
    public Task FenceAsync(TimeSpan grace) => StopAllAsync(grace);

    private async Task StopAllAsync(TimeSpan? grace)
    {
        List<InstanceRunner> runners;
        List<JournalEntry> orphans;
        lock (_lock)
        {
            runners = [.. _runners.Values];
            orphans = [.. _unclaimed.Values];
            _runners.Clear();
            _unclaimed.Clear();
        }

        await Task.WhenAll(runners.Select(r => r.StopAsync(grace)).Concat(orphans.Select(StopOrphanAsync)).Concat(SnapshotStopping()));
        SaveJournal();
    }

    /// <summary>
    /// Records a stop under its instance's key, joined to any stop of the same instance still under way: a goal that
    /// changes an instance twice in quick succession leaves two runs stopping, and the next run (which shares their
    /// folder when the generation is the same) must wait for both, or an older run's cleanup removes its app/.
    /// </summary>
    private void Stopping(string key, Task stop) =>
        _stopping[key] = _stopping.TryGetValue(key, out var earlier) && !earlier.IsCompleted ? Task.WhenAll(earlier, stop) : stop;

    /// <summary>Completes when every stop under way now has finished (tests).</summary>
    internal Task Quiet() => Task.WhenAll(SnapshotStopping());

    private Task[] SnapshotStopping()
    {
        lock (_lock)
        {
            return [.. _stopping.Values];
        }
    }

    private async Task StopAndForgetAsync(InstanceRunner runner)
    {
        await runner.StopAsync();
        lock (_lock)
        {
            if (_stopping.TryGetValue(runner.Id, out var task) && task.IsCompleted)
            {
                _stopping.Remove(runner.Id);
            }
        }
    }

    private async Task StopOrphanAsync(JournalEntry entry)
    {
        var driver = _context.Drivers.GetValueOrDefault(entry.Driver ?? DriverNames.Process) ?? _context.Drivers[DriverNames.Process];
        await driver.StopAsync(new RunningProcess(entry.Pid, entry.StartTime, null, entry.Id), _context.Options.StopGracePeriod, CancellationToken.None);
        driver.Cleanup(entry.Id, entry.Directory);
        _report(new InstanceReport { InstanceId = entry.Id, State = Contracts.Api.InstanceStates.Stopped, Generation = entry.Generation });
        SaveJournal();
    }

    private void SaveJournal()
    {
        lock (_lock)
        {
            _journal.Save(_runners.Values.Select(r => r.JournalEntry()).OfType<JournalEntry>().Concat(_unclaimed.Values));
        }
    }

    /// <summary>
    /// What makes two goals for one instance the same run: a change in any of it restarts the instance. Settings are
    /// not part of it: the controller gives a new generation when a settings change must restart the instance, and
    /// keeps the generation when the role reloads its settings on SIGHUP.
    /// </summary>
    internal static string SpecKey(InstanceGoal goal) =>
        $"{goal.Generation}|{goal.PackageSha256}|{string.Join(',', goal.Cpus)}|{goal.MemoryMib}{(goal.ImageSha256.Length > 0 ? "|" + goal.ImageSha256 : string.Empty)}";
}
