namespace Heddle.Controller.Store.Kv;

/// <summary>
/// This controller's copy of every key of the store, kept current by a watch (list, then watch from the list's
/// revision, as an informer does): reads are answered from memory, so they keep working while the store cannot be
/// reached (the last known state), and a commit made here is applied to the copy as soon as the store accepts it, so
/// a write is visible to the next read of the same controller. A change that comes from another writer is applied
/// when the watch delivers it. Every change the copy takes in, its own commits' and the watch's, is reported through
/// <see cref="Changed"/>.
/// </summary>
public sealed class KvMirror : IAsyncDisposable
{
    private readonly IKeyValueStore _store;
    /// <summary>Readers share the copy (a goal state, a listing and an agent's certificate check at once); a change takes it alone, briefly.</summary>
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Dictionary<string, KvEntry> _entries = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _keys = new(StringComparer.Ordinal);

    /// <summary>Keys deleted here, with the revision of the delete, until the watch has passed it (a late put is not resurrected).</summary>
    private readonly Dictionary<string, long> _deleted = new(StringComparer.Ordinal);

    /// <summary>The same deletes by revision, so letting go of those the watch passed costs them, not every delete held (10,000 at once when services go).</summary>
    private readonly PriorityQueue<string, long> _deletedOrder = new();

    private readonly CancellationTokenSource _stop = new();
    private long _watched;
    private Task _watch = Task.CompletedTask;

    private readonly bool _ownsStore;

    private KvMirror(IKeyValueStore store, bool ownsStore)
    {
        _store = store;
        _ownsStore = ownsStore;
    }

    /// <summary>
    /// Raised (outside the lock) with the changes of a commit (or of a commit and the events that tell of it, or of a
    /// reload) once they are in the copy: each with the key's entry before and after it and where it came from, a commit
    /// made through this mirror (its caller says which writer) or the watch (or a reload after the history was
    /// compacted), <see cref="ChangeSource.Elsewhere"/>.
    /// </summary>
    public event Action<IReadOnlyList<KvChange>>? Changed;

    private long _version;

    /// <summary>Grows with every change the copy takes in: a view derived from the copy at one version is current while it stays.</summary>
    public long Version => Volatile.Read(ref _version);

    /// <summary>
    /// For each top-level prefix ("services/") and each second-level one ("status/web/"), the <see cref="Version"/> at
    /// which a key under it last changed (written under the write lock, read without it: asked for by every listing, it
    /// kept writers waiting behind readers). Second-level prefixes are kept for every one ever seen: a few per service
    /// (the records named by service), not one per record.
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _prefixVersions = new(StringComparer.Ordinal);

    /// <summary>
    /// The <see cref="Version"/> at which a key under a top-level prefix ("services/", up to the first '/') or a
    /// second-level one ("instances/web/", up to the second) last changed, or 0: a reader that shows only some kinds of
    /// record, or one service's, follows those, not every heartbeat of another kind or every report of another service.
    /// </summary>
    /// <remarks>A version is noted after its change is in the copy, under the write lock: a listing made (under the read
    /// lock) after reading a version holds that change or a newer one.</remarks>
    public long VersionOf(string prefix) => _prefixVersions.GetValueOrDefault(prefix);

    /// <summary>How many of the latest changes <see cref="TryChangedSince"/> can tell of.</summary>
    internal const int ChangesKept = 1 << 16;

    /// <summary>The key changed at each of the latest <see cref="ChangesKept"/> versions, at version % <see cref="ChangesKept"/> (written under the write lock).</summary>
    private readonly string[] _changedKeys = new string[ChangesKept];

    /// <summary>
    /// The keys under <paramref name="prefix"/> changed after version <paramref name="since"/>, each with its entry now
    /// (null when deleted; a key changed twice comes twice), and the version they are as of; false when more changes
    /// than are kept have passed since (then list whole). A view kept from an earlier listing is brought up to date by
    /// what changed, not made again from every record.
    /// </summary>
    public bool TryChangedSince(string prefix, long since, List<(string Key, KvEntry? Entry)> changed, out long version)
    {
        _lock.EnterReadLock();
        try
        {
            version = Volatile.Read(ref _version);
            if (version - since >= ChangesKept || since > version)
            {
                return false;
            }

            for (var at = since + 1; at <= version; at++)
            {
                var key = _changedKeys[at % ChangesKept];
                if (key.StartsWith(prefix, StringComparison.Ordinal))
                {
                    changed.Add((key, _entries.GetValueOrDefault(key)));
                }
            }

            return true;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private void NoteChange(string key)
    {
        var version = Interlocked.Increment(ref _version);
        _changedKeys[version % ChangesKept] = key;
        var end = key.IndexOf('/', StringComparison.Ordinal);
        var prefixes = _prefixVersions.GetAlternateLookup<ReadOnlySpan<char>>(); // no string made for a prefix seen before
        prefixes[end < 0 ? key.AsSpan() : key.AsSpan(0, end + 1)] = version;
        if (end >= 0 && key.IndexOf('/', end + 1) is var second and >= 0)
        {
            prefixes[key.AsSpan(0, second + 1)] = version;
        }
    }

    /// <summary>Why the watch is not following the store now, or null while it is.</summary>
    public string? Lagging { get; private set; }

    public IKeyValueStore Store => _store;

    /// <param name="ownsStore">Whether disposing the mirror disposes the store (false when several mirrors share one, as tests of several controllers do).</param>
    public static async Task<KvMirror> StartAsync(IKeyValueStore store, bool ownsStore = true, CancellationToken cancellationToken = default)
    {
        var mirror = new KvMirror(store, ownsStore);
        var range = await store.ListAsync(string.Empty, cancellationToken);
        mirror.Load(range);
        mirror._watch = Task.Run(mirror.FollowAsync, CancellationToken.None);
        return mirror;
    }

    public KvEntry? Get(string key)
    {
        _lock.EnterReadLock();
        try
        {
            return _entries.GetValueOrDefault(key);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>The entries under a prefix, in key order.</summary>
    public List<KvEntry> List(string prefix)
    {
        _lock.EnterReadLock();
        try
        {
            if (prefix.Length == 0)
            {
                return [.. _keys.Select(k => _entries[k])];
            }

            return [.. _keys.GetViewBetween(prefix, prefix + char.MaxValue).Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Select(k => _entries[k])];
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>
    /// Commits; on success the writes are in the copy before this returns. On a failed condition the keys it named are
    /// read again from the store, so a caller that reads and retries sees what beat it.
    /// </summary>
    /// <param name="source">Which writer of this controller commits (what the change feed tells its consumers).</param>
    public async Task<KvCommit> CommitAsync(IReadOnlyList<KvCondition> conditions, IReadOnlyList<KvWrite> writes, CancellationToken cancellationToken = default,
        ChangeSource source = ChangeSource.Here) =>
        (await CommitThenAsync(new KvBatchItem(conditions, writes), _ => [], source, cancellationToken).ConfigureAwait(false))[0];

    /// <summary>
    /// Commits <paramref name="first"/>; when it succeeds, commits each of <paramref name="following"/> on its own conditions
    /// (the events that tell of the first), and only then tells of the changes of all of them: a consumer acting on the
    /// first change (a reconciler queued, an agent sent its goal) never writes its own events before those. The results
    /// are the first's and then each of the others' (none when the first failed). <paramref name="following"/> is made from the
    /// first's revision (a new record's incarnation).
    /// </summary>
    /// <param name="told">Whether events follow: then the watch waits for the first commit (so it is told after them), as it
    /// does for the reconciler's commits (so they are told as its own).</param>
    public async Task<IReadOnlyList<KvCommit>> CommitThenAsync(KvBatchItem first, Func<long, IReadOnlyList<KvBatchItem>> following, ChangeSource source,
        CancellationToken cancellationToken = default, bool told = false)
    {
        var (result, applied) = await TakeCommittedAsync(async () => [await _store.CommitAsync(first.Conditions, first.Writes, cancellationToken).ConfigureAwait(false)], [first], source,
            told || source == ChangeSource.Reconciler).ConfigureAwait(false);
        if (!result[0].Succeeded)
        {
            foreach (var condition in first.Conditions)
            {
                await RefreshAsync(condition.Key, cancellationToken).ConfigureAwait(false);
            }

            return result;
        }

        // In the copy at once; told once the events are stored too, whatever became of them.
        IReadOnlyList<KvCommit> after = [];
        var then = following(result[0].Revision);
        try
        {
            if (then.Count > 0)
            {
                (after, var events) = await TakeCommittedAsync(() => _store.CommitEachAsync(then, cancellationToken), then, source, held: false).ConfigureAwait(false);
                applied.AddRange(events);
            }
        }
        finally
        {
            Raise(applied);
            Hosting.RequestTrace.Mark("told to the views and reconcilers");
        }

        return [result[0], .. after];
    }

    /// <summary>
    /// Commits through the store and takes what succeeded into the copy; meanwhile the watch waits
    /// if it brings a change of a key this commit writes and <paramref name="held"/> (<see cref="_committing"/>): a commit of
    /// this mirror that the watch took in first would be told as another writer's, and before the events that follow it.
    /// Any other commit the watch may take in first: it is then told as another writer's, and acted on just the same.
    /// </summary>
    private async Task<(IReadOnlyList<KvCommit> Results, List<KvChange> Applied)> TakeCommittedAsync(Func<Task<IReadOnlyList<KvCommit>>> commit,
        IReadOnlyList<KvBatchItem> commits, ChangeSource source, bool held)
    {
        var done = held ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null; // not for every report
        if (done is not null)
        {
            _committing.TryAdd(done, [.. commits.SelectMany(c => c.Writes).Select(w => w.Key)]);
        }

        try
        {
            var results = await commit().ConfigureAwait(false);
            Hosting.RequestTrace.Mark("committed to the store");
            var applied = Take([.. commits.Select((each, i) => (each, results[i]))], source);
            Hosting.RequestTrace.Mark("taken into the controller's copy");
            return (results, applied);
        }
        finally
        {
            if (done is not null)
            {
                _committing.TryRemove(done, out _);
                done.TrySetResult();
            }
        }
    }

    /// <summary>
    /// Commits of this mirror on their way (to the store, and from its answer into the copy), with the keys they write:
    /// the watch takes in a change of one of those keys only once they are in. Only commits with events to follow and the
    /// reconciler's, and only for their keys: waiting for every commit on its way (agents' reports among them) held the
    /// watch behind a busy controller (10,000 instances Ready took 1.5 times as long).
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<TaskCompletionSource, HashSet<string>> _committing = new();

    /// <summary>The commits of this mirror on their way that write a key the watch brought a change of.</summary>
    private List<Task> CommittingAny(List<KvEvent> changes)
    {
        List<Task> pending = [];
        foreach (var (done, keys) in _committing)
        {
            if (changes.Exists(c => keys.Contains(c.Key)))
            {
                pending.Add(done.Task);
            }
        }

        return pending;
    }

    /// <summary>Several commits, each on its own conditions (<see cref="IKeyValueStore.CommitEachAsync"/>); each that succeeds is in the copy before this returns.</summary>
    public async Task<IReadOnlyList<KvCommit>> CommitEachAsync(IReadOnlyList<KvBatchItem> commits, CancellationToken cancellationToken = default)
    {
        var (results, applied) = await TakeCommittedAsync(() => _store.CommitEachAsync(commits, cancellationToken), commits, ChangeSource.Here, held: false).ConfigureAwait(false);
        Raise(applied);
        for (var i = 0; i < commits.Count; i++)
        {
            if (!results[i].Succeeded)
            {
                foreach (var condition in commits[i].Conditions)
                {
                    await RefreshAsync(condition.Key, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        return results;
    }

    /// <summary>Takes the writes of the commits that succeeded into the copy; returns the changes to tell of.</summary>
    private List<KvChange> Take(IReadOnlyList<(KvBatchItem Commit, KvCommit Result)> commits, ChangeSource source)
    {
        var applied = new List<KvChange>();
        _lock.EnterWriteLock();
        try
        {
            foreach (var (commit, result) in commits)
            {
                if (result.Succeeded)
                {
                    foreach (var write in commit.Writes)
                    {
                        ApplyWriteLocked(write, result.Revision, source, applied);
                    }
                }
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }

        return applied;
    }

    /// <summary>Reads one key from the store into the copy (when the store's answer is newer than the copy's).</summary>
    public async Task RefreshAsync(string key, CancellationToken cancellationToken = default)
    {
        var range = await _store.ListAsync(key, cancellationToken).ConfigureAwait(false);
        var entry = range.Entries.FirstOrDefault(e => e.Key == key);
        _lock.EnterWriteLock();
        try
        {
            ApplyLocked(entry is null ? new KvEvent(KvEventKind.Delete, key, null, range.Revision) : new KvEvent(KvEventKind.Put, key, entry.Value, entry.ModRevision),
                ChangeSource.Elsewhere, out _, entry);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private void Load(KvRange range)
    {
        var changes = new List<KvChange>();
        _lock.EnterWriteLock();
        try
        {
            var present = range.Entries.Select(e => e.Key).ToHashSet(StringComparer.Ordinal);
            foreach (var gone in _keys.Where(k => !present.Contains(k)).ToList())
            {
                if (ApplyLocked(new KvEvent(KvEventKind.Delete, gone, null, range.Revision), ChangeSource.Elsewhere, out var change))
                {
                    changes.Add(change);
                }
            }

            foreach (var entry in range.Entries)
            {
                if (ApplyLocked(new KvEvent(KvEventKind.Put, entry.Key, entry.Value, entry.ModRevision), ChangeSource.Elsewhere, out var change, entry))
                {
                    changes.Add(change);
                }
            }

            _watched = range.Revision;
            _deleted.Clear();
            _deletedOrder.Clear();
        }
        finally
        {
            _lock.ExitWriteLock();
        }

        Raise(changes);
    }

    /// <summary>Applies a write this mirror committed; one the watch brought in first is not applied (or reported) twice.</summary>
    private void ApplyWriteLocked(KvWrite write, long revision, ChangeSource source, List<KvChange> applied)
    {
        if (ApplyLocked(new KvEvent(write.Value is null ? KvEventKind.Delete : KvEventKind.Put, write.Key, write.Value, revision), source, out var change))
        {
            applied.Add(change);
        }
    }

    /// <summary>Applies a change newer than what the copy holds of its key; false when the copy already has it (or newer).</summary>
    private bool ApplyLocked(KvEvent change, ChangeSource source, out KvChange applied, KvEntry? entry = null)
    {
        applied = null!;
        if (change.Revision <= HeldLocked(change.Key, out var current))
        {
            return false;
        }

        if (change.Kind == KvEventKind.Delete)
        {
            if (current is null)
            {
                NoteDeletedLocked(change.Key, change.Revision);
                return false;
            }

            _entries.Remove(change.Key);
            _keys.Remove(change.Key);
            NoteDeletedLocked(change.Key, change.Revision);
            NoteChange(change.Key);
            applied = new KvChange(change, current, null, source);
            return true;
        }

        var after = _entries[change.Key] = entry ?? new KvEntry(change.Key, change.Value!, current?.CreateRevision ?? change.Revision, change.Revision);
        _keys.Add(change.Key);
        _deleted.Remove(change.Key);
        NoteChange(change.Key);
        applied = new KvChange(change, current, after, source);
        return true;
    }

    private async Task FollowAsync()
    {
        var stop = _stop.Token;
        var failures = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                // A commit's changes are taken in together and then told: a reader or a subscriber never sees one
                // record of a commit changed and another not yet (a slot swap's two services).
                var commit = new List<KvEvent>();
                await foreach (var change in _store.WatchAsync(string.Empty, Interlocked.Read(ref _watched) + 1, stop).ConfigureAwait(false))
                {
                    failures = 0;
                    Lagging = null;
                    commit.Add(change);
                    if (!change.EndsCommit)
                    {
                        continue;
                    }

                    if (!_committing.IsEmpty && CommittingAny(commit) is { Count: > 0 } pending)
                    {
                        // A commit of this mirror may be this one: it is taken in, and told, as this mirror's own.
                        await Task.WhenAll(pending).ConfigureAwait(false);
                    }

                    if (_deletedOrder.Count < DeletedKept && AllHeld(commit))
                    {
                        // Committed here and taken in already (most commits, on a store of one controller): readers are not
                        // stopped for it. The deletes it passed are let go with the next change the watch does take in
                        // (or the next commit once many are kept).
                        Interlocked.Exchange(ref _watched, change.Revision);
                        commit.Clear();
                        continue;
                    }

                    var applied = new List<KvChange>(commit.Count);
                    _lock.EnterWriteLock();
                    try
                    {
                        foreach (var each in commit)
                        {
                            if (ApplyLocked(each, ChangeSource.Elsewhere, out var taken))
                            {
                                applied.Add(taken);
                            }
                        }

                        _watched = change.Revision;
                        while (_deletedOrder.TryPeek(out var passed, out var revision) && revision <= _watched)
                        {
                            _deletedOrder.Dequeue();
                            if (_deleted.TryGetValue(passed, out var held) && held == revision)
                            {
                                _deleted.Remove(passed); // not when deleted again since, or put again (then it is not held)
                            }
                        }
                    }
                    finally
                    {
                        _lock.ExitWriteLock();
                    }

                    commit.Clear();
                    Raise(applied);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (KvCompactedException e)
            {
                // The history is gone: take the whole state again and follow on from there.
                Lagging = e.Message;
                await ReloadAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is KvUnavailableException or IOException or Grpc.Core.RpcException)
            {
                Lagging = e.Message;
                failures++;
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 100 * failures)), stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>The revision the copy holds of a key: of its entry, or of its delete; 0 for neither.</summary>
    private long HeldLocked(string key, out KvEntry? current) => _entries.TryGetValue(key, out current) ? current.ModRevision : _deleted.GetValueOrDefault(key);

    private void NoteDeletedLocked(string key, long revision)
    {
        _deleted[key] = revision;
        _deletedOrder.Enqueue(key, revision);
    }

    /// <summary>How many deletes the watch may have passed before it takes the copy's write lock to let them go.</summary>
    private const int DeletedKept = 4096;

    /// <summary>Whether the copy holds each change of a commit already, or a newer one (under the read lock).</summary>
    private bool AllHeld(List<KvEvent> commit)
    {
        _lock.EnterReadLock();
        try
        {
            foreach (var each in commit)
            {
                if (each.Revision > HeldLocked(each.Key, out _))
                {
                    return false;
                }
            }

            return true;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private async Task ReloadAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                Load(await _store.ListAsync(string.Empty, stop).ConfigureAwait(false));
                return;
            }
            catch (Exception e) when (e is KvUnavailableException or IOException or Grpc.Core.RpcException)
            {
                Lagging = e.Message;
                await Task.Delay(500, stop).ConfigureAwait(false);
            }
        }
    }

    private void Raise(List<KvChange> changes)
    {
        if (changes.Count > 0)
        {
            Changed?.Invoke(changes);
        }
    }

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        try
        {
            await _watch;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
        if (_ownsStore)
        {
            await _store.DisposeAsync();
        }
    }
}
