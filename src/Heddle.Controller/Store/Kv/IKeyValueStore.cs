namespace Heddle.Controller.Store.Kv;

/// <summary>A key's value as stored, with the store revisions that created and last changed it.</summary>
public sealed record KvEntry(string Key, byte[] Value, long CreateRevision, long ModRevision)
{
    /// <summary>
    /// The record decoded from <see cref="Value"/> by its first reader, for every later one (entries are replaced whole
    /// when their key changes, and records are immutable). A field of the entry rather than a weak table beside it: tens
    /// of thousands of dependent handles made every collection of the controller's heap scan them all. Not part of the
    /// entry's equality.
    /// </summary>
    internal object? Decoded { get; set; }

    public bool Equals(KvEntry? other) => other is not null
        && Key == other.Key && ReferenceEquals(Value, other.Value) && CreateRevision == other.CreateRevision && ModRevision == other.ModRevision;

    public override int GetHashCode() => HashCode.Combine(Key, Value, CreateRevision, ModRevision);
}

/// <summary>The keys under a prefix, read at one store revision (watch from <c>Revision + 1</c> to follow on without a gap).</summary>
public sealed record KvRange(IReadOnlyList<KvEntry> Entries, long Revision);

/// <summary>A condition of a commit: the key was last changed at <paramref name="ModRevision"/>; 0 means the key must not exist.</summary>
public readonly record struct KvCondition(string Key, long ModRevision);

/// <summary>A write of a commit: a put, or (Value null) a delete.</summary>
public readonly record struct KvWrite(string Key, byte[]? Value)
{
    public static KvWrite Put(string key, byte[] value) => new(key, value);

    public static KvWrite Delete(string key) => new(key, null);
}

/// <summary>Whether every condition held (and so every write was applied, at <see cref="Revision"/>); else nothing changed.</summary>
public sealed record KvCommit(bool Succeeded, long Revision);

public enum KvEventKind
{
    Put,
    Delete,
}

/// <summary>One change, at the store revision of the commit that made it.</summary>
public sealed record KvEvent(KvEventKind Kind, string Key, byte[]? Value, long Revision)
{
    /// <summary>
    /// The last change of its commit that this watch delivers: a follower that takes in the changes up to it before
    /// telling anyone never shows half a commit (a slot swap's one record changed and not the other).
    /// </summary>
    public bool EndsCommit { get; init; } = true;

    /// <summary>The changes, in revision order, each marked whether the next one is of another commit.</summary>
    public static List<KvEvent> MarkCommitEnds(IReadOnlyList<KvEvent> changes)
    {
        var marked = new List<KvEvent>(changes.Count);
        for (var i = 0; i < changes.Count; i++)
        {
            var ends = i == changes.Count - 1 || changes[i + 1].Revision != changes[i].Revision;
            marked.Add(changes[i].EndsCommit == ends ? changes[i] : changes[i] with { EndsCommit = ends });
        }

        return marked;
    }
}

/// <summary>
/// A change <see cref="KvMirror"/> took into its copy: the key's entry before it and after it (null where the key is
/// absent), and which writer made it (<see cref="ChangeSource.Elsewhere"/>: another writer of the store, seen by the watch).
/// </summary>
public sealed record KvChange(KvEvent Event, KvEntry? Before, KvEntry? After, ChangeSource Source);

/// <summary>The store cannot be reached or cannot take the write now; the sentence says which and how far.</summary>
public sealed class KvUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A watch asked for history the store no longer keeps: list again and watch from that list's revision.</summary>
public sealed class KvCompactedException(long requested, long oldest)
    : Exception($"revision {requested} is compacted; the oldest kept is {oldest}: list again and watch from there")
{
    public long Oldest { get; } = oldest;
}

/// <summary>
/// The store contract the controller's state sits on: keys with values, each change a new store revision;
/// commits that apply only when every key is still at the revision the caller read (compare-and-swap, across keys);
/// and a watch from a revision (the history first, then live), so that every controller and data plane follows the
/// same sequence of changes. SQLite (one machine) and etcd (a replicated cluster) implement it, and an in-memory
/// fake does for fast tests. A key appears at most once among a commit's writes.
/// </summary>
public interface IKeyValueStore : IAsyncDisposable
{
    Task<KvEntry?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Every key starting with <paramref name="prefix"/>, in key order, and the revision they were read at.</summary>
    Task<KvRange> ListAsync(string prefix, CancellationToken cancellationToken = default);

    Task<KvCommit> CommitAsync(IReadOnlyList<KvCondition> conditions, IReadOnlyList<KvWrite> writes, CancellationToken cancellationToken = default);

    /// <summary>
    /// Several commits, each as <see cref="CommitAsync"/> makes it (its own conditions, its own revision), in order. A
    /// store that can write them in one go does (the embedded one: one transaction); the default makes them one by one.
    /// </summary>
    async Task<IReadOnlyList<KvCommit>> CommitEachAsync(IReadOnlyList<KvBatchItem> commits, CancellationToken cancellationToken = default)
    {
        var results = new KvCommit[commits.Count];
        for (var i = 0; i < commits.Count; i++)
        {
            results[i] = await CommitAsync(commits[i].Conditions, commits[i].Writes, cancellationToken).ConfigureAwait(false);
        }

        return results;
    }

    /// <summary>
    /// The changes under <paramref name="prefix"/> from revision <paramref name="fromRevision"/> on, in revision order:
    /// those already made first, then each as it is committed, until cancelled. 0 or less: only changes from now on.
    /// The last change of each commit under the prefix is marked <see cref="KvEvent.EndsCommit"/>.
    /// </summary>
    /// <exception cref="KvCompactedException">The history from that revision is no longer kept.</exception>
    IAsyncEnumerable<KvEvent> WatchAsync(string prefix, long fromRevision, CancellationToken cancellationToken = default);
}

/// <summary>Checks shared by the implementations.</summary>
public static class KvRules
{
    public static void CheckWrites(IReadOnlyList<KvWrite> writes)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var write in writes)
        {
            if (string.IsNullOrEmpty(write.Key))
            {
                throw new ArgumentException("a write names no key");
            }

            if (!seen.Add(write.Key))
            {
                throw new ArgumentException($"key {write.Key} is written twice in one commit");
            }
        }
    }
}

/// <summary>One commit of <see cref="IKeyValueStore.CommitEachAsync"/>.</summary>
public sealed record KvBatchItem(IReadOnlyList<KvCondition> Conditions, IReadOnlyList<KvWrite> Writes);
