using Heddle.Agent.Drivers;
using Heddle.Contracts.Agents;

namespace Heddle.Agent.Instances;

/// <summary>
/// What the parts of one <see cref="InstanceRunner"/> share: the goal the instance runs, the ports and folder this node
/// gave it, the driver and process it runs on, and the launch last worked out for it. A change or read of more than one
/// of them takes <see cref="Lock"/> (it is reentrant, so <see cref="Goal"/> may be read under it).
/// </summary>
internal sealed class RunnerState(InstanceGoal goal, string specKey, IInstanceDriver driver)
{
    private InstanceGoal _goal = goal;

    public Lock Lock { get; } = new();

    public string SpecKey => specKey;

    /// <summary>Replaced (same spec key) when only its peers, settings or revision label change.</summary>
    public InstanceGoal Goal
    {
        get
        {
            lock (Lock)
            {
                return _goal;
            }
        }

        set
        {
            lock (Lock)
            {
                _goal = value;
            }
        }
    }

    public string Id => Goal.InstanceId;

    /// <summary>The role's other instances as the goal last named them (heddle-instance.json lists them).</summary>
    public IReadOnlyList<Peer> Peers { get; set; } = [.. goal.Peers];

    /// <summary>The instance's ports by endpoint name: allocated when it is prepared, or the adopted process's.</summary>
    public Dictionary<string, int> Ports { get; set; } = [];

    /// <summary>The instance's folder, once it is prepared.</summary>
    public string? Directory { get; set; }

    /// <summary>The process that runs now (started or adopted); null between runs.</summary>
    public RunningProcess? Running { get; set; }

    /// <summary>The launch whose heddle-instance.json was last written: a settings reload replaces its environment.</summary>
    public InstanceLaunch? Described { get; set; }

    /// <summary>The driver of the role (the journal's for an adopted instance until the package says).</summary>
    public IInstanceDriver Driver { get; set; } = driver;

    /// <summary>The settings of a goal as one string: an adopted process whose goal has other settings is told to reload.</summary>
    public static string SettingsKey(InstanceGoal goal) =>
        string.Join(';', goal.Settings.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => $"{s.Key}={s.Value}"));

    /// <summary>What must be remembered to adopt the instance after an agent restart; null when nothing runs.</summary>
    public JournalEntry? JournalEntry(int restarts)
    {
        lock (Lock)
        {
            return Running is { } r && Directory is not null
                ? new JournalEntry(_goal.InstanceId, specKey, _goal.Generation, r.Pid, r.StartTime, new(Ports), Directory, restarts, SettingsKey(_goal), Driver.Name)
                : null;
        }
    }
}
