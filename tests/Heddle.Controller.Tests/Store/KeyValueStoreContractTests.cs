using System.Text;
using Heddle.Controller.Store.Kv;
using Heddle.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Store;

/// <summary>
/// One contract, three stores: what the controller relies on of its store holds alike for SQLite (one machine), etcd
/// (a cluster; started by the test from Debian's etcd-server) and the in-memory fake the reconciler tests use.
/// </summary>
public abstract class KeyValueStoreContractTests : IAsyncLifetime
{
    protected IKeyValueStore Store { get; set; } = null!;

    protected abstract Task<IKeyValueStore> OpenAsync();

    public async Task InitializeAsync() => Store = await OpenAsync();

    public virtual async Task DisposeAsync() => await Store.DisposeAsync();

    protected static byte[] B(string text) => Encoding.UTF8.GetBytes(text);

    protected static string S(byte[]? bytes) => bytes is null ? "<deleted>" : Encoding.UTF8.GetString(bytes);

    [Fact]
    public async Task Create_OnlyWhenAbsent_ThenUpdates_KeepTheirCreateRevisionAndMoveTheModRevision()
    {
        var created = await Store.CommitAsync([new("services/a", 0)], [KvWrite.Put("services/a", B("1"))]);
        var again = await Store.CommitAsync([new("services/a", 0)], [KvWrite.Put("services/a", B("2"))]);

        Assert.True(created.Succeeded);
        Assert.False(again.Succeeded);
        var entry = (await Store.GetAsync("services/a"))!;
        Assert.Equal("1", S(entry.Value));
        Assert.Equal(created.Revision, entry.CreateRevision);
        Assert.Equal(created.Revision, entry.ModRevision);

        var updated = await Store.CommitAsync([new("services/a", entry.ModRevision)], [KvWrite.Put("services/a", B("3"))]);
        Assert.True(updated.Succeeded);
        Assert.True(updated.Revision > created.Revision);
        var after = (await Store.GetAsync("services/a"))!;
        Assert.Equal(("3", created.Revision, updated.Revision), (S(after.Value), after.CreateRevision, after.ModRevision));
        Assert.Null(await Store.GetAsync("services/none"));
    }

    [Fact]
    public async Task ACommitWithOneStaleCondition_ChangesNothing_AndAFreshOneChangesEveryKeyAtOneRevision()
    {
        var first = await Store.CommitAsync([], [KvWrite.Put("a", B("1")), KvWrite.Put("b", B("1"))]);
        await Store.CommitAsync([], [KvWrite.Put("b", B("2"))]);

        var stale = await Store.CommitAsync([new("a", first.Revision), new("b", first.Revision)], [KvWrite.Put("a", B("x")), KvWrite.Delete("b"), KvWrite.Put("c", B("x"))]);
        Assert.False(stale.Succeeded);
        Assert.Equal(["a=1", "b=2"], (await Store.ListAsync("")).Entries.Select(e => $"{e.Key}={S(e.Value)}"));

        var b = (await Store.GetAsync("b"))!.ModRevision;
        var fresh = await Store.CommitAsync([new("a", first.Revision), new("b", b)], [KvWrite.Put("a", B("x")), KvWrite.Delete("b"), KvWrite.Put("c", B("x"))]);
        Assert.True(fresh.Succeeded);
        var range = await Store.ListAsync("");
        Assert.Equal(["a=x", "c=x"], range.Entries.Select(e => $"{e.Key}={S(e.Value)}"));
        Assert.All(range.Entries, e => Assert.Equal(fresh.Revision, e.ModRevision));
        Assert.Equal(fresh.Revision, range.Revision);
    }

    [Fact]
    public async Task List_ReturnsThePrefixOnly_InKeyOrder()
    {
        await Store.CommitAsync([], [KvWrite.Put("nodes/n2", B("2")), KvWrite.Put("nodes/n1", B("1")), KvWrite.Put("nodesx", B("x")), KvWrite.Put("services/a", B("a"))]);

        var nodes = await Store.ListAsync("nodes/");

        Assert.Equal(["nodes/n1", "nodes/n2"], nodes.Entries.Select(e => e.Key));
    }

    [Fact]
    public async Task AWatchFromARevision_ReplaysTheHistoryThenFollowsLive_InOrder_ForItsPrefixOnly()
    {
        var first = await Store.CommitAsync([], [KvWrite.Put("w/a", B("1"))]);
        await Store.CommitAsync([], [KvWrite.Put("w/b", B("1")), KvWrite.Put("other/x", B("1"))]);
        await Store.CommitAsync([], [KvWrite.Delete("w/a")]);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var seen = new List<string>();

        await using var watch = Store.WatchAsync("w/", first.Revision, stop.Token).GetAsyncEnumerator(stop.Token);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(await watch.MoveNextAsync());
            seen.Add($"{watch.Current.Kind} {watch.Current.Key}={S(watch.Current.Value)}");
        }

        var live = await Store.CommitAsync([], [KvWrite.Put("w/c", B("2"))]);
        Assert.True(await watch.MoveNextAsync());
        seen.Add($"{watch.Current.Kind} {watch.Current.Key}={S(watch.Current.Value)}@{watch.Current.Revision == live.Revision}");

        Assert.Equal(["Put w/a=1", "Put w/b=1", "Delete w/a=<deleted>", "Put w/c=2@True"], seen);
    }

    [Fact]
    public async Task AWatchFromNow_SeesOnlyLaterChanges_AndListThenWatchMissesNothing()
    {
        await Store.CommitAsync([], [KvWrite.Put("q/old", B("1"))]);
        var listed = await Store.ListAsync("q/");
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var fromNow = Store.WatchAsync("q/", 0, stop.Token).GetAsyncEnumerator(stop.Token);
        await using var fromList = Store.WatchAsync("q/", listed.Revision + 1, stop.Token).GetAsyncEnumerator(stop.Token);
        // A live-only watch sees what is committed once it is registered: write until it has seen a write, never the old key.
        var pending = fromNow.MoveNextAsync().AsTask();
        var written = 0;
        await Poll.UntilAsync(async () =>
        {
            if (!pending.IsCompleted)
            {
                await Store.CommitAsync([], [KvWrite.Put($"q/new{written++}", B("2"))]);
            }

            return pending.IsCompleted;
        }, seen => seen, TimeSpan.FromSeconds(10), "the live watch to see one of the writes");

        Assert.True(await pending);
        Assert.StartsWith("q/new", fromNow.Current.Key);
        Assert.True(await fromList.MoveNextAsync());
        Assert.Equal("q/new0", fromList.Current.Key);
    }

    [Fact]
    public async Task RacingCompareAndSwaps_OnOneKey_EachRoundHasOneWinner()
    {
        await Store.CommitAsync([], [KvWrite.Put("counter", B("0"))]);
        var wins = 0;
        for (var round = 0; round < 20; round++)
        {
            var read = (await Store.GetAsync("counter"))!;
            var next = B((int.Parse(S(read.Value)) + 1).ToString());
            var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Store.CommitAsync([new("counter", read.ModRevision)], [KvWrite.Put("counter", next)])));
            Assert.Equal(1, results.Count(r => r.Succeeded));
            wins++;
        }

        Assert.Equal(wins.ToString(), S((await Store.GetAsync("counter"))!.Value));
    }

    [Fact]
    public async Task CommitsFromManyThreadsAtOnce_EachIsOneRevision_CompareAndSwapsLoseNoIncrement_AndAWatchSeesEveryChangeInOrder()
    {
        // Commits that arrive together may be written together (SQLite's group commit): each must still be a revision
        // of its own, checked against the ones written just before it, and answered only with what was made.
        var start = (await Store.CommitAsync([], [KvWrite.Put("race/counter", B("0"))])).Revision;
        const int Threads = 4;
        const int PerThread = 12; // 96 revisions: within what the in-memory store keeps for a watch to replay (100)
        var revisions = new System.Collections.Concurrent.ConcurrentBag<long>();
        await Task.WhenAll(Enumerable.Range(0, Threads).Select(t => Task.Run(async () =>
        {
            for (var i = 0; i < PerThread; i++)
            {
                revisions.Add((await Store.CommitAsync([], [KvWrite.Put($"race/own/{t}/{i}", B("x"))])).Revision);
                while (true)
                {
                    var read = (await Store.GetAsync("race/counter"))!;
                    var swapped = await Store.CommitAsync([new("race/counter", read.ModRevision)], [KvWrite.Put("race/counter", B((int.Parse(S(read.Value)) + 1).ToString()))]);
                    if (swapped.Succeeded)
                    {
                        revisions.Add(swapped.Revision);
                        break;
                    }
                }
            }
        })));

        Assert.Equal((Threads * PerThread).ToString(), S((await Store.GetAsync("race/counter"))!.Value));
        Assert.Equal(Threads * PerThread * 2, revisions.Distinct().Count());
        Assert.Equal(Threads * PerThread, (await Store.ListAsync("race/own/")).Entries.Count);

        var seen = new List<long>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var change in Store.WatchAsync("race/", start + 1, stop.Token))
        {
            seen.Add(change.Revision);
            if (seen.Count == revisions.Count)
            {
                break;
            }
        }

        Assert.Equal(revisions.Order(), seen);
    }

    [Fact]
    public async Task AKeyWrittenTwiceInOneCommit_IsRefused_AndNothingChanges()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Store.CommitAsync([], [KvWrite.Put("k", B("1")), KvWrite.Delete("k")]));

        Assert.Null(await Store.GetAsync("k"));
    }
}

public sealed class SqliteKeyValueStoreTests : KeyValueStoreContractTests
{
    private readonly TempDirectory _directory = new("heddle-kv-");

    protected override Task<IKeyValueStore> OpenAsync() => Task.FromResult<IKeyValueStore>(new SqliteKeyValueStore(_directory.Combine("kv.db")));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task AReopenedFile_HasEveryCommittedChange_AndWatchesResumeFromItsRevisions()
    {
        var committed = await Store.CommitAsync([], [KvWrite.Put("services/a", B("1"))]);
        await Store.DisposeAsync();

        await using var reopened = new SqliteKeyValueStore(_directory.Combine("kv.db"));
        Assert.Equal("1", S((await reopened.GetAsync("services/a"))!.Value));
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var change in reopened.WatchAsync("services/", committed.Revision, stop.Token))
        {
            Assert.Equal(("services/a", committed.Revision), (change.Key, change.Revision));
            break;
        }

        Assert.True((await reopened.CommitAsync([], [KvWrite.Put("services/b", B("2"))])).Revision > committed.Revision);
        Store = reopened;
    }
}

public sealed class InMemoryKeyValueStoreTests : KeyValueStoreContractTests
{
    protected override Task<IKeyValueStore> OpenAsync() => Task.FromResult<IKeyValueStore>(new InMemoryKeyValueStore(keptRevisions: 100));

    [Fact]
    public async Task AWatchFromACompactedRevision_SaysSo()
    {
        for (var i = 0; i < 150; i++)
        {
            await Store.CommitAsync([], [KvWrite.Put("k", B(i.ToString()))]);
        }

        var e = await Assert.ThrowsAsync<KvCompactedException>(async () =>
        {
            await foreach (var _ in Store.WatchAsync("", 1))
            {
            }
        });
        Assert.Contains("compacted", e.Message);
    }
}

public sealed class EtcdKeyValueStoreTests : KeyValueStoreContractTests
{
    private EtcdProcess? _etcd;

    protected override async Task<IKeyValueStore> OpenAsync()
    {
        _etcd = await EtcdProcess.StartAsync();
        return new EtcdKeyValueStore([_etcd.ClientUrl]);
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
    }

    [Fact]
    public async Task WithEtcdGone_ACallFailsWithASentence_AndAStoreRootKeepsClustersApart()
    {
        await Store.CommitAsync([], [KvWrite.Put("services/a", B("1"))]);
        await using (var other = new EtcdKeyValueStore([_etcd!.ClientUrl], root: "/other/"))
        {
            Assert.Empty((await other.ListAsync("")).Entries);
        }

        await _etcd.DisposeAsync();
        _etcd = null;
        var e = await Assert.ThrowsAsync<KvUnavailableException>(() => Store.GetAsync("services/a"));
        Assert.StartsWith("store unavailable: 0 of 1 etcd members reachable", e.Message);
    }
}

/// <summary>The etcd store on a three-member etcd cluster: one member lost changes nothing; two lost, writes fail with a sentence; back, all works.</summary>
public sealed class EtcdClusterKeyValueStoreTests : IAsyncLifetime
{
    private EtcdProcess _etcd = null!;

    public async Task InitializeAsync() => _etcd = await EtcdProcess.StartAsync(members: 3);

    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    [Fact]
    public async Task LosingOneMemberChangesNothing_LosingTwoFailsWritesWithASentence_AndTheyComeBack()
    {
        await using var store = new EtcdKeyValueStore(_etcd.ClientUrls);
        await store.CommitAsync([], [KvWrite.Put("services/a", "1"u8.ToArray())]);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var watched = new List<string>();
        var watching = Task.Run(async () =>
        {
            await foreach (var change in store.WatchAsync("services/", 1, stop.Token))
            {
                lock (watched)
                {
                    watched.Add(change.Key);
                }
            }
        }, stop.Token);

        // What the watch delivered so far; why it ended, if it did.
        List<string> Seen()
        {
            if (watching.IsFaulted)
            {
                throw new InvalidOperationException($"the watch ended: {watching.Exception!.InnerException}");
            }

            lock (watched)
            {
                return [.. watched];
            }
        }

        _etcd.Kill(0); // the member the store talks to first
        var read = await store.GetAsync("services/a");
        Assert.NotNull(read);
        Assert.True((await store.CommitAsync([new("services/a", read.ModRevision)], [KvWrite.Put("services/a", "2"u8.ToArray()), KvWrite.Put("services/b", "1"u8.ToArray())])).Succeeded);
        await Poll.UntilAsync(() => Task.FromResult(Seen()), seen => seen.Contains("services/b"), TimeSpan.FromSeconds(20), "the watch resumed on another member");

        _etcd.Kill(1);
        var e = await Assert.ThrowsAsync<KvUnavailableException>(() => store.CommitAsync([], [KvWrite.Put("services/c", "1"u8.ToArray())]));
        Assert.StartsWith("store unavailable: 1 of 3 etcd members reachable", e.Message);

        await Task.WhenAll(_etcd.RestartAsync(0), _etcd.RestartAsync(1));
        var after = await Poll.UntilAsync(async () =>
        {
            try
            {
                return (await store.CommitAsync([], [KvWrite.Put("services/d", "1"u8.ToArray())])).Succeeded;
            }
            catch (KvUnavailableException)
            {
                return false;
            }
        }, ok => ok, TimeSpan.FromSeconds(30), "writes work again");
        Assert.True(after);
        Assert.Equal(["services/a", "services/b", "services/d"], (await store.ListAsync("services/")).Entries.Where(x => x.Key != "services/c").Select(x => x.Key));
        await Poll.UntilAsync(() => Task.FromResult(Seen()), seen => seen.Contains("services/d"), TimeSpan.FromSeconds(30), "the watch saw the write after the members came back");
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watching);
    }
}
