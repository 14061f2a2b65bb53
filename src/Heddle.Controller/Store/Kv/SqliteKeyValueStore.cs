using Microsoft.Data.Sqlite;

namespace Heddle.Controller.Store.Kv;

/// <summary>
/// The key-value store in one SQLite file (WAL, synchronous=FULL: a commit survives a crash once answered): the
/// current entries, and a log of the last <see cref="KeptRevisions"/> revisions' changes for watches to replay.
/// One process only; a cluster of controllers uses etcd.
/// </summary>
public sealed class SqliteKeyValueStore : LocalKeyValueStore
{
    /// <summary>How many revisions of changes the log keeps for watches that fall behind.</summary>
    public const long KeptRevisions = 10_000;

    private readonly SqliteConnection _db;

    /// <summary>
    /// Each statement prepared once and run again with new values: made afresh for every run, each commit's four or five
    /// statements were compiled by SQLite each time, for every report of every instance. Used only under the base class's
    /// lock (or before anything else runs: <see cref="Load"/>), as the one connection is.
    /// </summary>
    private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal);

    /// <summary>The batch's transaction, which every statement run meanwhile must name.</summary>
    private SqliteTransaction? _transaction;

    public SqliteKeyValueStore(string path)
    {
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _db.Open();
        Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;");
        Execute("""
            CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS kv_log(revision INTEGER NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, value BLOB, PRIMARY KEY(revision, seq));
            CREATE TABLE IF NOT EXISTS kv_meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT OR IGNORE INTO kv_meta(name, value) VALUES('revision', 0), ('oldest', 1);
            """);
    }

    protected override long Revision => Meta("revision");

    protected override long OldestKept => Meta("oldest");

    protected override KvEntry? Read(string key) =>
        Query("SELECT key, value, create_revision, mod_revision FROM kv WHERE key = $k", ReadEntry, ("$k", key)).FirstOrDefault();

    /// <summary>Without the value: a report's commit checks three keys (placement, report, session), and read whole, each check
    /// copied the key's value out of SQLite for nothing.</summary>
    protected override long ModRevisionOf(string key) =>
        Query("SELECT mod_revision FROM kv WHERE key = $k", r => r.GetInt64(0), ("$k", key)) is [var revision] ? revision : 0;

    protected override List<KvEntry> ReadPrefix(string prefix) =>
        Query("SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= $p AND key < $p || char(1114111) ORDER BY key", ReadEntry, ("$p", prefix));

    protected override List<KvEvent> ReadLog(string prefix, long fromRevision) =>
        Query("SELECT key, value, revision FROM kv_log WHERE revision >= $r AND key >= $p AND key < $p || char(1114111) ORDER BY revision, seq",
            r => new KvEvent(r.IsDBNull(1) ? KvEventKind.Delete : KvEventKind.Put, r.GetString(0), r.IsDBNull(1) ? null : (byte[])r[1], r.GetInt64(2)),
            ("$r", fromRevision), ("$p", prefix));

    /// <summary>One transaction for a batch of commits: one fsync (synchronous=FULL) when it commits.</summary>
    protected override IStoreBatch BeginBatch() => new Transaction(this, _transaction = _db.BeginTransaction());

    protected override List<KvEvent> Apply(long revision, IReadOnlyList<KvWrite> writes)
    {
        var changes = WriteRows(revision, writes);
        Execute("UPDATE kv_meta SET value = $r WHERE name = 'revision'", ("$r", revision));
        if (revision % 1000 == 0 && revision > KeptRevisions)
        {
            Execute("DELETE FROM kv_log WHERE revision < $o", ("$o", revision - KeptRevisions));
            Execute("UPDATE kv_meta SET value = $o WHERE name = 'oldest'", ("$o", revision - KeptRevisions));
        }

        return changes;
    }

    private sealed class Transaction(SqliteKeyValueStore store, SqliteTransaction transaction) : IStoreBatch
    {
        public void Complete()
        {
            transaction.Commit();
            store._transaction = null;
        }

        public void Dispose()
        {
            transaction.Dispose();
            store._transaction = null;
        }
    }

    /// <summary>
    /// Fills an empty store in one transaction: each commit of <paramref name="commits"/> is a revision of its own,
    /// the first at <paramref name="firstRevision"/> (so revisions can start above numbers handed out before, such as
    /// generations). Used to bring a store of another layout over before anything reads or watches this one.
    /// </summary>
    /// <exception cref="InvalidOperationException">The store is not empty.</exception>
    public void Load(IReadOnlyList<IReadOnlyList<KvWrite>> commits, long firstRevision)
    {
        if (Revision != 0)
        {
            throw new InvalidOperationException($"the store already holds revision {Revision}; only an empty store is loaded");
        }

        using var tx = _transaction = _db.BeginTransaction();
        var revision = Math.Max(1, firstRevision);
        foreach (var writes in commits.Where(c => c.Count > 0))
        {
            KvRules.CheckWrites(writes);
            WriteRows(revision++, writes);
        }

        Execute("UPDATE kv_meta SET value = $r WHERE name = 'revision'", ("$r", revision - 1));
        Execute("UPDATE kv_meta SET value = $o WHERE name = 'oldest'", ("$o", Math.Max(1, firstRevision)));
        tx.Commit();
        _transaction = null;
    }

    /// <summary>The store's revision (0 while it is empty).</summary>
    public long CurrentRevision => Revision;

    private List<KvEvent> WriteRows(long revision, IReadOnlyList<KvWrite> writes)
    {
        var changes = new List<KvEvent>();
        foreach (var write in writes)
        {
            if (write.Value is null)
            {
                if (Execute("DELETE FROM kv WHERE key = $k", ("$k", write.Key)) == 0)
                {
                    continue;
                }
            }
            else
            {
                Execute("""
                    INSERT INTO kv(key, value, create_revision, mod_revision) VALUES($k, $v, $r, $r)
                    ON CONFLICT(key) DO UPDATE SET value = $v, mod_revision = $r
                    """, ("$k", write.Key), ("$v", write.Value), ("$r", revision));
            }

            Execute("INSERT INTO kv_log(revision, seq, key, value) VALUES($r, $s, $k, $v)", ("$r", revision), ("$s", changes.Count), ("$k", write.Key), ("$v", write.Value));
            changes.Add(new KvEvent(write.Value is null ? KvEventKind.Delete : KvEventKind.Put, write.Key, write.Value, revision));
        }

        return changes;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        foreach (var command in _prepared.Values)
        {
            command.Dispose();
        }

        await _db.DisposeAsync();
    }

    private long Meta(string name) => Query("SELECT value FROM kv_meta WHERE name = $n", r => r.GetInt64(0), ("$n", name)).Single();

    private static KvEntry ReadEntry(SqliteDataReader r) => new(r.GetString(0), (byte[])r[1], r.GetInt64(2), r.GetInt64(3));

    private int Execute(string sql, params (string Name, object? Value)[] parameters) => Prepared(sql, parameters).ExecuteNonQuery();

    private List<T> Query<T>(string sql, Func<SqliteDataReader, T> read, params (string Name, object? Value)[] parameters) =>
        Prepared(sql, parameters).ReadAll(read);

    /// <summary>The statement's command, prepared the first time, with this run's values and the batch's transaction.</summary>
    private SqliteCommand Prepared(string sql, (string Name, object? Value)[] parameters)
    {
        if (!_prepared.TryGetValue(sql, out var command))
        {
            command = _db.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, _) in parameters)
            {
                command.Parameters.Add(new SqliteParameter { ParameterName = name });
            }

            _prepared[sql] = command;
        }

        command.Transaction = _transaction;
        for (var i = 0; i < parameters.Length; i++)
        {
            command.Parameters[i].Value = parameters[i].Value ?? DBNull.Value;
        }

        return command;
    }
}
