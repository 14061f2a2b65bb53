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
}
