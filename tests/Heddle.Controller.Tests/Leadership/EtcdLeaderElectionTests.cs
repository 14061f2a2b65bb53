using System.Collections.Concurrent;
using System.Diagnostics;
using Heddle.Controller.Leadership;
using Heddle.Controller.Store.Kv;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using Xunit.Abstractions;

namespace Heddle.Controller.Tests.Leadership;

/// <summary>
/// Leader election on a real etcd: one leader at a time; a leader cut off from etcd stops acting before a follower is
/// elected (no two leaders act at once), and the follower takes over within the lease time.
/// </summary>
public sealed class EtcdLeaderElectionTests(ITestOutputHelper output) : IAsyncLifetime
{
    private EtcdProcess _etcd = null!;
    private readonly ConcurrentQueue<(string Who, string What, long Term, long At)> _log = new();

    public async Task InitializeAsync() => _etcd = await EtcdProcess.StartAsync();

    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    [Fact]
    public async Task ALeaderCutOffFromEtcd_StopsActingBeforeTheFollowerLeads_AndTheFollowerTakesOverWithinTheLease()
    {
        await using var link = new LinkCutter(_etcd.ClientUrl);
        using var aMembers = new EtcdMembers([link.Url]);
        using var bMembers = new EtcdMembers([_etcd.ClientUrl]);
        var a = new EtcdLeaderElection(aMembers, "controllers", "a", NullLogger.Instance);
        var b = new EtcdLeaderElection(bMembers, "controllers", "b", NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var runA = a.RunAsync(Lead("a"), stop.Token);
        await Poll.UntilAsync(() => _log.Any(e => e is { Who: "a", What: "start" }), TimeSpan.FromSeconds(10), "a leads");
        var runB = b.RunAsync(Lead("b"), stop.Token);
        Assert.Equal("a", await b.LeaderAsync());

        var cut = Stopwatch.GetTimestamp();
        await link.CutAsync();
        await Poll.UntilAsync(() => _log.Any(e => e is { Who: "b", What: "start" }), TimeSpan.FromSeconds(15), "b leads");

        var aStopped = _log.Single(e => e is { Who: "a", What: "stop" });
        var bStarted = _log.Single(e => e is { Who: "b", What: "start" });
        output.WriteLine($"a stopped acting {Stopwatch.GetElapsedTime(cut, aStopped.At).TotalMilliseconds:0} ms after the cut; "
            + $"b leads {Stopwatch.GetElapsedTime(cut, bStarted.At).TotalMilliseconds:0} ms after it");
        Assert.True(aStopped.At < bStarted.At, "b was leading while a still acted");
        Assert.True(bStarted.Term > _log.Single(e => e is { Who: "a", What: "start" }).Term);
        Assert.Equal("b", await b.LeaderAsync());

        await stop.CancelAsync();
        await Task.WhenAll(runA, runB);
    }

    [Fact]
    public async Task ALeaderWhoseRenewalsAreHeldUpButWhoseLeaseLives_StopsActing_ThenActsAgainInTheSameTerm_AndNoOtherLeads()
    {
        // A lease of 8 s and a stop after 2 s unconfirmed: the link is silent past the stop and back long before the lease ends.
        await using var link = new LinkCutter(_etcd.ClientUrl);
        using var aMembers = new EtcdMembers([link.Url]);
        using var bMembers = new EtcdMembers([_etcd.ClientUrl]);
        var a = new EtcdLeaderElection(aMembers, "controllers", "a", NullLogger.Instance) { LeaseTtl = TimeSpan.FromSeconds(8), StepDownMargin = TimeSpan.FromSeconds(6) };
        var b = new EtcdLeaderElection(bMembers, "controllers", "b", NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var runA = a.RunAsync(Lead("a"), stop.Token);
        await Poll.UntilAsync(() => _log.Any(e => e is { Who: "a", What: "start" }), TimeSpan.FromSeconds(10), "a leads");
        var runB = b.RunAsync(Lead("b"), stop.Token);
        Assert.Equal("a", await b.LeaderAsync());

        var silenced = Stopwatch.GetTimestamp();
        link.Silence();
        await Poll.UntilAsync(() => _log.Any(e => e is { Who: "a", What: "stop" }), TimeSpan.FromSeconds(10), "a to stop acting while its renewals go unanswered");
        output.WriteLine($"a stopped acting {Stopwatch.GetElapsedTime(silenced).TotalMilliseconds:0} ms after its link went silent");
        link.Restore();
        await Poll.UntilAsync(() => _log.Count(e => e is { Who: "a", What: "start" }) == 2, TimeSpan.FromSeconds(10), "a to act again once a renewal is confirmed");
        output.WriteLine($"a acts again {Stopwatch.GetElapsedTime(silenced).TotalMilliseconds:0} ms after its link went silent");

        var starts = _log.Where(e => e is { Who: "a", What: "start" }).ToList();
        Assert.Equal(starts[0].Term, starts[1].Term);
        Assert.DoesNotContain(_log, e => e.Who == "b");
        Assert.Equal("a", await b.LeaderAsync());

        await stop.CancelAsync();
        await Task.WhenAll(runA, runB);
    }

    [Fact]
    public async Task ALeaderThatStops_HandsOverAtOnce_WithoutWaitingForItsLease()
    {
        using var aMembers = new EtcdMembers([_etcd.ClientUrl]);
        using var bMembers = new EtcdMembers([_etcd.ClientUrl]);
        var a = new EtcdLeaderElection(aMembers, "controllers", "a", NullLogger.Instance);
        var b = new EtcdLeaderElection(bMembers, "controllers", "b", NullLogger.Instance);
        using var stopA = new CancellationTokenSource();
        using var stopB = new CancellationTokenSource();
        var runA = a.RunAsync(Lead("a"), stopA.Token);
        await Poll.UntilAsync(() => _log.Any(e => e is { Who: "a", What: "start" }), TimeSpan.FromSeconds(10), "a leads");
        var runB = b.RunAsync(Lead("b"), stopB.Token);

        var stopped = Stopwatch.GetTimestamp();
        await stopA.CancelAsync();
        await runA;
        await Poll.UntilAsync(() => _log.Any(e => e is { Who: "b", What: "start" }), TimeSpan.FromSeconds(10), "b leads");
        output.WriteLine($"b leads {Stopwatch.GetElapsedTime(stopped, _log.Single(e => e is { Who: "b", What: "start" }).At).TotalMilliseconds:0} ms after a stopped (lease 3 s)");
        Assert.Single(_log, e => e is { Who: "a", What: "stop" });

        await stopB.CancelAsync();
        await runB;
    }

    private Func<Heddle.Controller.Leadership.Leadership, CancellationToken, Task> Lead(string who) => async (term, token) =>
    {
        _log.Enqueue((who, "start", term.Term, Stopwatch.GetTimestamp()));
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (token.Register(() => ended.TrySetResult()))
        {
            await ended.Task; // leads until the election takes the term back
        }

        _log.Enqueue((who, "stop", term.Term, Stopwatch.GetTimestamp()));
    };
}
