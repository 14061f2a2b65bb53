using System.Diagnostics;
using Grpc.Core;
using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Tests.Store;

/// <summary>Which etcd member calls go to: a member that failed is left for the next, round and round (no connection is made here).</summary>
public sealed class EtcdMembersTests
{
    [Fact]
    public void AFailedMember_IsLeftForTheNext_RoundAndRound_AndAFailureOfAnotherThanTheCurrentChangesNothing()
    {
        using var members = new EtcdMembers([new Uri("http://127.0.0.1:1"), new Uri("http://127.0.0.1:2"), new Uri("http://127.0.0.1:3")]);
        var seen = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            seen.Add(members.NameOf(members.Current));
            members.Failed(members.Current);
        }

        // Past the last member the first comes again, and failing it still moves on (an index past the end once stuck on it).
        Assert.Equal(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:1"], seen);
        var current = members.Current;
        members.Failed(members.Next(current));
        Assert.Same(current, members.Current);
    }

    private static RpcException NoLeader() => new(new Status(StatusCode.Unavailable, "etcdserver: no leader"));

    [Fact]
    public async Task AMemberWithNoLeader_IsLeftAtOnce_ForOneThatAnswers()
    {
        using var members = new EtcdMembers([new Uri("http://127.0.0.1:1"), new Uri("http://127.0.0.1:2"), new Uri("http://127.0.0.1:3")]);
        var asked = new List<string>();
        var clock = Stopwatch.StartNew();
        var answer = await members.CallAsync(m =>
        {
            asked.Add(members.NameOf(m));
            return members.NameOf(m) == "127.0.0.1:1" ? Task.FromException<string>(NoLeader()) : Task.FromResult(members.NameOf(m));
        }, CancellationToken.None);
        Assert.Equal("127.0.0.1:2", answer);
        Assert.Equal(["127.0.0.1:1", "127.0.0.1:2"], asked);
        Assert.Equal("127.0.0.1:2", members.NameOf(members.Current));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task WhileNoMemberHasALeader_TheCallGoesRoundAgain_UntilOneHas_OrItsTimeIsUp()
    {
        using var members = new EtcdMembers([new Uri("http://127.0.0.1:1"), new Uri("http://127.0.0.1:2"), new Uri("http://127.0.0.1:3")]);

        // etcd elects in 300 ms: the call waits for it.
        var clock = Stopwatch.StartNew();
        var answer = await members.CallAsync(m => clock.Elapsed < TimeSpan.FromMilliseconds(300) ? Task.FromException<string>(NoLeader()) : Task.FromResult(members.NameOf(m)), CancellationToken.None);
        Assert.NotNull(answer);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(3));

        // No leader for longer than the call may take: it fails after about that long, saying why.
        clock.Restart();
        var e = await Assert.ThrowsAsync<KvUnavailableException>(() => members.CallAsync(_ => Task.FromException<string>(NoLeader()), CancellationToken.None, TimeSpan.FromSeconds(1)));
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(800), TimeSpan.FromSeconds(4));
        Assert.Contains("etcdserver: no leader", e.Message);
    }
}
