using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Heddle.Controller.Store.Kv;

/// <summary>
/// A store kept by this process alone (SQLite, or memory in tests): commits are serialised under one lock, and
/// watchers are fed from that lock, so every watcher sees every change once, in revision order. Subclasses keep the
/// entries, the change log and the revision counter, and apply a commit's writes atomically.
/// </summary>
public abstract class LocalKeyValueStore : IKeyValueStore
{
    private readonly Lock _gate = new();
    private readonly List<(string Prefix, Channel<KvEvent> Channel)> _watchers = [];

    /// <summary>The entry of a key, or null.</summary>
    protected abstract KvEntry? Read(string key);

    /// <summary>The entries whose key starts with the prefix, in ordinal key order.</summary>
    protected abstract List<KvEntry> ReadPrefix(string prefix);

    /// <summary>The revision of the last commit (0 for an empty store).</summary>
    protected abstract long Revision { get; }

    /// <summary>The oldest revision whose changes the log still holds.</summary>
    protected abstract long OldestKept { get; }

    /// <summary>The logged changes under the prefix from the revision on, in revision order.</summary>
    protected abstract List<KvEvent> ReadLog(string prefix, long fromRevision);

    /// <summary>Applies the writes as revision <paramref name="revision"/>, all or nothing, and returns the changes made (a delete of an absent key makes none).</summary>
    protected abstract List<KvEvent> Apply(long revision, IReadOnlyList<KvWrite> writes);

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

    public Task<KvCommit> CommitAsync(IReadOnlyList<KvCondition> conditions, IReadOnlyList<KvWrite> writes, CancellationToken cancellationToken = default)
    {
        KvRules.CheckWrites(writes);
        lock (_gate)
        {
            foreach (var condition in conditions)
            {
                if ((Read(condition.Key)?.ModRevision ?? 0) != condition.ModRevision)
                {
                    return Task.FromResult(new KvCommit(false, Revision));
                }
            }

            if (writes.Count == 0)
            {
                return Task.FromResult(new KvCommit(true, Revision));
            }

            var revision = Revision + 1;
            var changes = Apply(revision, writes);
            foreach (var change in changes)
            {
                foreach (var (prefix, channel) in _watchers)
                {
                    if (change.Key.StartsWith(prefix, StringComparison.Ordinal))
                    {
                        channel.Writer.TryWrite(change);
                    }
                }
            }

            return Task.FromResult(new KvCommit(true, revision));
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

            history = fromRevision > 0 ? ReadLog(prefix, fromRevision) : [];
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
}
