using System.Diagnostics;
using System.Globalization;
using System.Text;
using Heddle.Controller.Store.Kv;
using Microsoft.Data.Sqlite;

namespace Heddle.Benchmarks.Store;

/// <summary>
/// Commits per second to the embedded SQLite store (WAL, synchronous=FULL) from 1, 8 and 64 writers at once, as agents'
/// reports and reconcile passes arrive together; commits that arrive together are written in one transaction (one
/// fsync). Reference, same run and disk: SQLite itself, one small transaction per write from one thread.
/// Options: --commits N (per round, default 2000).
/// </summary>
internal static class StoreCommitHarness
{
    public static int Run(string[] args)
    {
        var options = NumberOptions.Parse(args);
        var commits = options.GetValueOrDefault("commits", 2000);
        var folder = Directory.CreateDirectory(Path.Combine("/var/tmp", $"heddle-store-bench-{Environment.ProcessId}")); // on disk, as a controller's state is (/tmp may be memory)
        try
        {
            Console.WriteLine($"store commit benchmark: {commits:N0} commits of one 200-byte key per round, file in {folder.FullName}");
            Console.WriteLine($"{"writers",-44} {"commits/s",10} {"p50 ms",8} {"p99 ms",8}");
            foreach (var writers in new[] { 1, 8, 64 })
            {
                Measure($"heddle store, {writers} writer(s) at once", Path.Combine(folder.FullName, $"kv-{writers}.db"), writers, commits);
            }

            Reference(Path.Combine(folder.FullName, "raw.db"), commits);
            return 0;
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static void Measure(string what, string path, int writers, int commits)
    {
        var store = new SqliteKeyValueStore(path);
        var value = Encoding.UTF8.GetBytes(new string('v', 200));
        var latencies = new double[commits];
        var next = -1;
        var clock = Stopwatch.StartNew();
        Task.WaitAll([.. Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < commits)
            {
                var started = Stopwatch.GetTimestamp();
                await store.CommitAsync([], [KvWrite.Put($"bench/{i % 500}", value)]);
                latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
        }))]);
        var seconds = clock.Elapsed.TotalSeconds;
        store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Array.Sort(latencies);
        Print(what, commits / seconds, latencies[commits / 2], latencies[(int)(commits * 0.99)]);
    }

    private static void Reference(string path, int commits)
    {
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        db.Open();
        using (var setup = db.CreateCommand())
        {
            setup.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE kv(key TEXT PRIMARY KEY, value BLOB NOT NULL);";
            setup.ExecuteNonQuery();
        }

        var value = Encoding.UTF8.GetBytes(new string('v', 200));
        var latencies = new double[commits];
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < commits; i++)
        {
            var started = Stopwatch.GetTimestamp();
            using var transaction = db.BeginTransaction();
            using var insert = db.CreateCommand();
            insert.CommandText = "INSERT INTO kv(key, value) VALUES($k, $v) ON CONFLICT(key) DO UPDATE SET value = $v";
            insert.Parameters.AddWithValue("$k", $"bench/{i % 500}");
            insert.Parameters.AddWithValue("$v", value);
            insert.ExecuteNonQuery();
            transaction.Commit();
            latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }

        Array.Sort(latencies);
        Print("reference: SQLite, one transaction per write", commits / clock.Elapsed.TotalSeconds, latencies[commits / 2], latencies[(int)(commits * 0.99)]);
    }

    private static void Print(string what, double perSecond, double p50, double p99) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what,-44} {perSecond,10:0} {p50,8:0.00} {p99,8:0.00}"));
}
