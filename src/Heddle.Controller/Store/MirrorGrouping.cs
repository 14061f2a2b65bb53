using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>
/// The records under a prefix of the mirror, grouped by a name each record gives (a placement's node, a certificate's
/// node): grouped once, then brought up to date by the keys changed since (<see cref="KvMirror.TryChangedSince"/>), and
/// grouped again from every record only when more changes than the mirror remembers have passed. Grouped again for each
/// question, a node's placements cost a pass over 25,000 instances per commit of a deployment, and a node's
/// certificates a pass over every node's at each enrolment (quadratic over an enrolment of 10,000 nodes).
/// </summary>
internal sealed class MirrorGrouping<T>(KvMirror mirror, string prefix, Func<T, string> groupOf)
    where T : class
{
    private readonly Lock _lock = new();
    private readonly List<(string Key, KvEntry? Entry)> _changed = [];
    private Groups? _groups;

    /// <summary>The records of a group now (in no particular order).</summary>
    public T[] Of(string group)
    {
        lock (_lock)
        {
            // The version is read before the records: a grouping is at least as new as the version it is kept under (a
            // change it already holds, applied again, changes nothing).
            var version = mirror.VersionOf(prefix);
            if (_groups is not { } groups || (groups.Version < version && !CatchUp(groups)))
            {
                _groups = groups = new Groups(mirror.Version);
                foreach (var entry in mirror.List(prefix))
                {
                    groups.Set(entry.Key, KvClusterStore.Decode<T>(entry), groupOf);
                }
            }

            return groups.Members.TryGetValue(group, out var members) ? [.. members.Values] : [];
        }
    }

    /// <summary>Applies the records changed since the grouping's version; false when too many have passed to know them.</summary>
    private bool CatchUp(Groups groups)
    {
        _changed.Clear();
        if (!mirror.TryChangedSince(prefix, groups.Version, _changed, out var now))
        {
            return false;
        }

        foreach (var (key, entry) in _changed)
        {
            groups.Set(key, entry is null ? null : KvClusterStore.Decode<T>(entry), groupOf);
        }

        groups.Version = now;
        _changed.Clear();
        return true;
    }

    private sealed class Groups(long version)
    {
        public long Version { get; set; } = version;

        public Dictionary<string, Dictionary<string, T>> Members { get; } = new(StringComparer.Ordinal);

        private readonly Dictionary<string, string> _groupOfKey = new(StringComparer.Ordinal);

        /// <summary>Puts (or, with no record, removes) the record under <paramref name="key"/>.</summary>
        public void Set(string key, T? record, Func<T, string> groupOf)
        {
            if (_groupOfKey.Remove(key, out var was) && Members.TryGetValue(was, out var before))
            {
                before.Remove(key);
                if (before.Count == 0)
                {
                    Members.Remove(was);
                }
            }

            if (record is not null)
            {
                var group = groupOf(record);
                _groupOfKey[key] = group;
                if (!Members.TryGetValue(group, out var members))
                {
                    Members[group] = members = new Dictionary<string, T>(StringComparer.Ordinal);
                }

                members[key] = record;
            }
        }
    }
}
