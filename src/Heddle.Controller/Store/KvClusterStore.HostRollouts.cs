using Heddle.Controller.HostRollouts;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>The host rollout under one key (<c>hostrollouts/current</c>), each write conditioned on the revision it was read at.</summary>
public sealed partial class KvClusterStore : IHostRolloutStore
{
    public HostRollout? GetHostRollout() => Read<HostRollout>(Keys.HostRollout);

    public async Task<HostRolloutStartOutcome> StartHostRolloutAsync(HostRollout rollout, CancellationToken cancellationToken = default)
    {
        var entry = _mirror.Get(Keys.HostRollout);
        if (entry is not null && !Decode<HostRollout>(entry).IsFinished)
        {
            return HostRolloutStartOutcome.AlreadyRunning;
        }

        var committed = await CommitAsync([new(Keys.HostRollout, entry?.ModRevision ?? 0)], [Put(Keys.HostRollout, rollout with { Version = 1 })], cancellationToken);
        return committed ? HostRolloutStartOutcome.Started : HostRolloutStartOutcome.AlreadyRunning;
    }

    public async Task<bool> UpdateHostRolloutAsync(HostRollout next, CancellationToken cancellationToken = default, (string Key, long Revision)? fence = null,
        IReadOnlyList<NewEvent>? told = null, IReadOnlyList<(string Machine, string Image)>? imageSets = null)
    {
        if (_mirror.Get(Keys.HostRollout) is not { } entry || Decode<HostRollout>(entry).Version != next.Version)
        {
            return false;
        }

        var conditions = new Dictionary<string, long>(StringComparer.Ordinal) { [entry.Key] = entry.ModRevision };
        if (fence is { } term)
        {
            conditions[term.Key] = term.Revision;
        }

        var writes = new Writes();
        writes.Put(entry.Key, next with { Version = next.Version + 1 });
        if ((imageSets ?? []).Any(set => SetMachineImage(set.Machine, set.Image, conditions, writes) != MachineImageOutcome.Set))
        {
            return false;
        }

        return await CommitToldAsync([.. conditions.Select(c => new KvCondition(c.Key, c.Value))], writes.List, told ?? [], ChangeSource.Here, cancellationToken);
    }
}
