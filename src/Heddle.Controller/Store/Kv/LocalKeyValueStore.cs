using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Heddle.Controller.Store.Kv;

/// <summary>
/// A store kept by this process alone (SQLite, or memory in tests): commits are serialised under one lock, and
/// watchers are fed from that lock, so every watcher sees every change once, in revision order. Subclasses keep the
/// entries, the change log and the revision counter, and apply a commit's writes atomically.
/// <para>
/// Commits that arrive while one is being written are written together (group commit): each is still its own
/// revision, checked against the ones before it in the batch, but the batch is one transaction, so one fsync makes
/// them all durable. A commit is answered only once its batch is durable; if the batch fails, every commit in it
/// fails and none of it was made.
/// </para>
/// </summary>
public abstract class LocalKeyValueStore : IKeyValueStore
{
    private readonly Lock _gate = new();
    private readonly List<(string Prefix, Channel<KvEvent> Channel)> _watchers = [];

    private readonly Lock _queue = new();
    private List<PendingCommit> _pending = [];
    private bool _writing;

    /// <summary>The entry of a key, or null.</summary>
    protected abstract KvEntry? Read(string key);

    /// <summary>The revision that last changed a key, 0 when it is absent: what a commit's conditions are checked against.</summary>
    protected virtual long ModRevisionOf(string key) => Read(key)?.ModRevision ?? 0;

    /// <summary>The entries whose key starts with the prefix, in ordinal key order.</summary>
    protected abstract List<KvEntry> ReadPrefix(string prefix);

    /// <summary>The revision of the last commit (0 for an empty store).</summary>
    protected abstract long Revision { get; }

    /// <summary>The oldest revision whose changes the log still holds.</summary>
    protected abstract long OldestKept { get; }

    /// <summary>The logged changes under the prefix from the revision on, in revision order.</summary>
    protected abstract List<KvEvent> ReadLog(string prefix, long fromRevision);

    /// <summary>
    /// Applies the writes as revision <paramref name="revision"/> within the current batch (<see cref="BeginBatch"/>)
    /// and returns the changes made (a delete of an absent key makes none). Reads within the batch see them.
    /// </summary>
    protected abstract List<KvEvent> Apply(long revision, IReadOnlyList<KvWrite> writes);

    /// <summary>Starts a batch of commits: all of its <see cref="Apply"/>s are made durable together by <see cref="IStoreBatch.Complete"/>, or none (disposed without it).</summary>
    protected virtual IStoreBatch BeginBatch() => NoBatch.Instance;

    public Task<KvEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(Read(key));
        }
    }

    public Task<KvRange> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(new KvRange(ReadPrefix(prefix), Revision));
        }
    }

    public async Task<KvCommit> CommitAsync(IReadOnlyList<KvCondition> conditions, IReadOnlyList<KvWrite> writes, CancellationToken cancellationToken = default)
    {
        KvRules.CheckWrites(writes);
        var commit = new PendingCommit(conditions, writes);
        Enqueue([commit]);
        var answer = await commit.Answer.Task.ConfigureAwait(false);
        // A slow API call's trace tells waiting for the writer (the batch before this one being written) from this one's own write.
        Hosting.RequestTrace.Mark("queued for the store's writer", commit.Began);
        Hosting.RequestTrace.Mark($"written with {commit.BatchSize - 1} other commit(s) in one transaction");
        return answer;
    }

    /// <summary>Queues every commit at once, so they go into one transaction (with whatever else is queued).</summary>
    public async Task<IReadOnlyList<KvCommit>> CommitEachAsync(IReadOnlyList<KvBatchItem> commits, CancellationToken cancellationToken = default)
    {
        if (commits.Count == 0)
        {
            return [];
        }

        foreach (var commit in commits)
        {
            KvRules.CheckWrites(commit.Writes);
        }

        var pending = commits.Select(c => new PendingCommit(c.Conditions, c.Writes)).ToList();
        Enqueue(pending);
        return await Task.WhenAll(pending.Select(p => p.Answer.Task)).ConfigureAwait(false);
    }

    /// <summary>
    /// Queues commits for the writer at work, which takes them into its next batch; with none at work, this caller writes
    /// its own commits and what queued meanwhile, and once its last is answered, whatever arrived since is left to a
    /// thread-pool writer, so a caller never waits on others' commits for long.
    /// </summary>
    private void Enqueue(IReadOnlyList<PendingCommit> commits)
    {
        lock (_queue)
        {
            _pending.AddRange(commits);
            if (_writing)
            {
                return;
            }

            _writing = true;
        }

        WriteQueued(until: commits[^1]);
    }

    private void WriteQueued(PendingCommit? until)
    {
        while (true)
        {
            List<PendingCommit> batch;
            lock (_queue)
            {
                if (_pending.Count == 0)
                {
                    _writing = false;
                    return;
                }

                if (until is not null && until.Answer.Task.IsCompleted)
                {
                    _ = Task.Run(() => WriteQueued(until: null));
                    return;
                }

                batch = _pending;
                _pending = [];
            }

            Write(batch);
        }
    }

    /// <summary>Writes a batch in one transaction: each commit checked against the store as the ones before it left it.</summary>
    private void Write(List<PendingCommit> batch)
    {
        var answers = new KvCommit[batch.Count];
        lock (_gate)
        {
            var began = System.Diagnostics.Stopwatch.GetTimestamp();
            foreach (var commit in batch)
            {
                (commit.Began, commit.BatchSize) = (began, batch.Count);
            }

            var changes = new List<KvEvent>();
            try
            {
                using var transaction = BeginBatch();
                var revision = Revision;
                for (var i = 0; i < batch.Count; i++)
                {
                    var (conditions, writes) = (batch[i].Conditions, batch[i].Writes);
                    if (conditions.Any(c => ModRevisionOf(c.Key) != c.ModRevision))
                    {
                        answers[i] = new KvCommit(false, revision);
                        continue;
                    }

                    if (writes.Count > 0)
                    {
                        changes.AddRange(Apply(++revision, writes));
                    }

                    answers[i] = new KvCommit(true, revision);
                }

                transaction.Complete();
            }
            catch (Exception e)
            {
                foreach (var commit in batch)
                {
                    commit.Answer.TrySetException(e);
                }

                return;
            }

            foreach (var (prefix, channel) in _watchers)
            {
                foreach (var change in KvEvent.MarkCommitEnds([.. changes.Where(c => c.Key.StartsWith(prefix, StringComparison.Ordinal))]))
                {
                    channel.Writer.TryWrite(change);
                }
            }
        }

        for (var i = 0; i < batch.Count; i++)
        {
            batch[i].Answer.TrySetResult(answers[i]);
        }
    }

    public async IAsyncEnumerable<KvEvent> WatchAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<KvEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        List<KvEvent> history;
        lock (_gate)
        {
            if (fromRevision > 0 && fromRevision < OldestKept)
            {
                throw new KvCompactedException(fromRevision, OldestKept);
            }

            history = fromRevision > 0 ? KvEvent.MarkCommitEnds(ReadLog(prefix, fromRevision)) : [];
            _watchers.Add((prefix, channel));
        }

        try
        {
            foreach (var change in history)
            {
                yield return change;
            }

            await foreach (var change in channel.Reader.ReadAllAsync(cancellationToken))
            {
                yield return change;
            }
        }
        finally
        {
            lock (_gate)
            {
                _watchers.RemoveAll(w => w.Channel == channel);
            }
        }
    }

    public virtual ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            foreach (var (_, channel) in _watchers)
            {
                channel.Writer.TryComplete();
            }
        }

        return ValueTask.CompletedTask;
    }

    private sealed class PendingCommit(IReadOnlyList<KvCondition> conditions, IReadOnlyList<KvWrite> writes)
    {
        public IReadOnlyList<KvCondition> Conditions => conditions;

        public IReadOnlyList<KvWrite> Writes => writes;

        /// <summary>Continuations run on the thread pool, not on the writer's thread (which may go on writing).</summary>
        public TaskCompletionSource<KvCommit> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>When the writer began the batch that holds this commit (a <see cref="System.Diagnostics.Stopwatch"/> timestamp), and how many commits it holds.</summary>
        public long Began { get; set; }

        public int BatchSize { get; set; }
    }

    private sealed class NoBatch : IStoreBatch
    {
        public static readonly NoBatch Instance = new();

        public void Complete()
        {
        }

        public void Dispose()
        {
        }
    }
}

/// <summary>A batch of commits being written: durable once completed, undone if disposed before.</summary>
public interface IStoreBatch : IDisposable
{
    void Complete();
}
