using Heddle.Controller.Store.Kv;

namespace Heddle.Testing;

/// <summary>The key-value store in memory, for fast reconciler tests: the same contract as SQLite and etcd, nothing kept.</summary>
public sealed class InMemoryKeyValueStore(long keptRevisions = 10_000) : LocalKeyValueStore
{
    private readonly SortedDictionary<string, KvEntry> _entries = new(StringComparer.Ordinal);
    private readonly List<KvEvent> _log = [];
    private long _revision;
    private long _oldest = 1;

    protected override long Revision => _revision;

    protected override long OldestKept => _oldest;

    protected override KvEntry? Read(string key) => _entries.GetValueOrDefault(key);

    protected override List<KvEntry> ReadPrefix(string prefix) => [.. _entries.Values.Where(e => e.Key.StartsWith(prefix, StringComparison.Ordinal))];

    protected override List<KvEvent> ReadLog(string prefix, long fromRevision) =>
        [.. _log.Where(e => e.Revision >= fromRevision && e.Key.StartsWith(prefix, StringComparison.Ordinal))];

    protected override List<KvEvent> Apply(long revision, IReadOnlyList<KvWrite> writes)
    {
        var changes = new List<KvEvent>();
        foreach (var write in writes)
        {
            if (write.Value is null)
            {
                if (_entries.Remove(write.Key))
                {
                    changes.Add(new KvEvent(KvEventKind.Delete, write.Key, null, revision));
                }

                continue;
            }

            var created = _entries.TryGetValue(write.Key, out var old) ? old.CreateRevision : revision;
            _entries[write.Key] = new KvEntry(write.Key, [.. write.Value], created, revision);
            changes.Add(new KvEvent(KvEventKind.Put, write.Key, [.. write.Value], revision));
        }

        _revision = revision;
        _log.AddRange(changes);
        if (revision - _oldest >= keptRevisions)
        {
            _oldest = revision - keptRevisions + 1;
            _log.RemoveAll(e => e.Revision < _oldest);
        }

        return changes;
    }
}
