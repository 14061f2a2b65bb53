using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// One reconcile pass over one service: the instances as the pass has changed them so far, and everything it will
/// commit in one transaction (placements, removals, marks, the walk, outcomes) with the events to write afterwards.
/// </summary>
internal sealed class ServicePass(ServiceRecord service, IReadOnlyList<InstanceRecord> instances)
{
    /// <summary>The generation of an instance placed or restarted in this pass until the commit gives the pass its own.</summary>
    public const long NewRun = -1;

    private readonly Dictionary<(string Role, int Index), InstanceRecord> _working = instances.ToDictionary(i => (i.Role, i.Index));
    private readonly Dictionary<(string Role, int Index), InstanceRecord> _upserts = [];
    private readonly HashSet<(string Role, int Index)> _removals = [];
    private readonly Dictionary<(string Role, int Index), InstanceMark> _marks = [];
    private readonly List<(long Revision, RevisionOutcome Outcome)> _outcomes = [];
    private WalkChange? _walk;
    private List<InstanceRecord>? _sorted; // Instances until the pass changes one: a list read several times a pass is sorted once

    public ServiceRecord Service { get; } = service;

    public IReadOnlyList<InstanceRecord> Before { get; } = instances;

    /// <summary>The instances as this pass leaves them, by role and index. A list once given is never changed: a change makes a new one.</summary>
    public IReadOnlyList<InstanceRecord> Instances
    {
        get
        {
            if (_sorted is null)
            {
                var sorted = new List<InstanceRecord>(_working.Values);
                sorted.Sort(ByRoleAndIndex);
                _sorted = sorted;
            }

            return _sorted;
        }
    }

    private static readonly Comparison<InstanceRecord> ByRoleAndIndex = (a, b) =>
        string.CompareOrdinal(a.Role, b.Role) is var byRole and not 0 ? byRole : a.Index.CompareTo(b.Index);

    public InstanceRecord Find(string role, int index) => _working[(role, index)];

    public long? DesiredRevision { get; private set; }

    public List<(EventKind Kind, string Subject, string Message)> Events { get; } = [];

    /// <summary>When the service should be looked at again even if nothing happens (a gate's countdown, a drain).</summary>
    public ReconcileResult Result { get; private set; } = ReconcileResult.Done;

    public IEnumerable<InstanceRecord> Placed => _upserts.Values;

    public IEnumerable<(string Role, int Index)> Removed => _removals;

    public void Mark(InstanceRecord instance, long revision, bool draining)
    {
        var key = (instance.Role, instance.Index);
        _marks[key] = new InstanceMark(instance.Role, instance.Index, revision, draining);
        _working[key] = instance with { Revision = revision, Draining = draining };
        _sorted = null;
    }

    public void Place(InstanceRecord instance)
    {
        var key = (instance.Role, instance.Index);
        _marks.Remove(key);
        _upserts[key] = instance;
        _working[key] = instance;
        _sorted = null;
    }

    /// <summary>
    /// Starts the instance afresh where it is placed (same node and CPUs) at <paramref name="revision"/>: a new run,
    /// Pending until its agent reports it, with nothing of what the run before reported.
    /// </summary>
    public void Restart(InstanceRecord instance, long revision) => Place(instance with
    {
        Generation = NewRun, Revision = revision, State = InstanceState.Pending, Reason = null, Ports = new Dictionary<string, int>(), Restarts = 0, Pid = 0,
        Draining = false, RunningRevision = 0, ReadySince = null, LastFailure = null, LastStderr = null,
    });

    public void Remove(string role, int index)
    {
        var key = (role, index);
        _marks.Remove(key);
        _upserts.Remove(key);
        _removals.Add(key);
        _working.Remove(key);
        _sorted = null;
    }

    public void Requeue(TimeSpan? after)
    {
        if (after is { } delay)
        {
            Result = ReconcileResult.Sooner(Result, ReconcileResult.After(delay));
        }
    }

    public void SetWalk(UpgradeWalk walk) => _walk = new WalkChange(walk);

    public void SetDesired(long revision) => DesiredRevision = revision;

    public void Outcome(long revision, RevisionOutcome outcome) => _outcomes.Add((revision, outcome));

    public PlacementCommit Commit() => new(Service.Name, Service.Version, [.. _upserts.Values], [.. _removals])
    {
        Marks = [.. _marks.Values],
        Walk = _walk,
        DesiredRevision = DesiredRevision,
        Outcomes = _outcomes,
    };
}
