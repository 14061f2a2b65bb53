using System.Net;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.L4;
using Heddle.LoadBalancer.LoadBalancing;
using Xunit.Abstractions;

namespace Heddle.LoadBalancer.Tests;

/// <summary>
/// Two balancers serving one VIP, each building its L4 pool on its own (<see cref="TcpVipListener.Pool.Of"/>, as
/// <see cref="TcpVipListener.Update"/> does), send a flow to the same backend when given the same backends, in
/// whatever order; what changes when one backend leaves, or when their health checks disagree about one.
/// </summary>
public sealed class SameBackendFromAnyBalancerTests(ITestOutputHelper output)
{
    private const int FlowCount = 100_000;
    private static readonly IPEndPoint Vip = new(IPAddress.Parse("10.77.0.1"), 8080);
    private static readonly List<Backend> Backends = [.. Enumerable.Range(0, 10).Select(i => new Backend($"hello/web/{i}", $"10.0.0.{i + 1}", 20000))];
    private static readonly string Leaving = Backends[3].Id;

    [Fact]
    public void PoolOf_SameBackendsInAnotherOrder_PicksTheSameBackendForEveryFlow()
    {
        var first = TcpVipListener.Pool.Of(Backends);
        var second = TcpVipListener.Pool.Of(Shuffled(Backends));

        Assert.Equal(Picks(first), Picks(second));
    }

    [Fact]
    public void MaglevTable_SameBackendsInAnotherOrder_PicksDiffer_WhichIsWhyThePoolOrdersThem()
    {
        var ids = Backends.Select(b => b.Id).ToList();
        var forward = new MaglevTable(ids);
        var backward = new MaglevTable([.. Enumerable.Reverse(ids)]);

        Assert.Contains(Flows(), f => forward.Backends[forward.Lookup(f)] != backward.Backends[backward.Lookup(f)]);
    }

    [Fact]
    public void PoolOf_OneBackendLeavesBoth_TheyStillAgree_AndFewFlowsOfTheOthersMove()
    {
        var before = Picks(TcpVipListener.Pool.Of(Backends));
        var remaining = Backends.Where(b => b.Id != Leaving).ToList();
        var first = Picks(TcpVipListener.Pool.Of(remaining));
        var second = Picks(TcpVipListener.Pool.Of(Shuffled(remaining)));

        Assert.Equal(first, second);
        var stayers = Enumerable.Range(0, FlowCount).Where(i => before[i] != Leaving).ToList();
        var moved = stayers.Count(i => first[i] != before[i]);
        output.WriteLine($"{Leaving} left: {moved} of {stayers.Count} flows on the other 9 backends moved ({100.0 * moved / stayers.Count:0.00}%)");
        Assert.True(moved < stayers.Count * 0.01, $"{moved} of {stayers.Count} flows of the remaining backends moved");
    }

    [Fact]
    public void PoolOf_HealthChecksDisagreeOnOneBackend_TheBalancersDifferOnItsFlowsAndFewOthers()
    {
        var seesAll = Picks(TcpVipListener.Pool.Of(Backends));
        var seesItDown = Picks(TcpVipListener.Pool.Of([.. Backends.Where(b => b.Id != Leaving)]));

        var differ = Enumerable.Range(0, FlowCount).Where(i => seesAll[i] != seesItDown[i]).ToList();
        var onIt = Enumerable.Range(0, FlowCount).Count(i => seesAll[i] == Leaving);
        var others = differ.Count(i => seesAll[i] != Leaving);
        output.WriteLine($"disagreeing about {Leaving}: {differ.Count} of {FlowCount} flows differ, {onIt} on it and {others} on others ({100.0 * others / (FlowCount - onIt):0.00}%)");
        Assert.Equal(onIt, differ.Count - others); // every flow of the disputed backend differs: one balancer cannot send it there
        Assert.True(others < (FlowCount - onIt) * 0.01, $"{others} flows of undisputed backends differ");
    }

    private static string[] Picks(TcpVipListener.Pool pool) => [.. Flows().Select(f => pool.Backends[pool.Table.Lookup(f)].Id)];

    /// <summary>Hashes of client flows to the VIP; every balancer hashes with the VIP as destination.</summary>
    private static IEnumerable<ulong> Flows()
    {
        var random = new Random(7);
        for (var i = 0; i < FlowCount; i++)
        {
            var client = new IPEndPoint(new IPAddress(random.Next()), random.Next(1024, 65536));
            yield return FlowHash.Of(client, Vip);
        }
    }

    private static List<Backend> Shuffled(IReadOnlyList<Backend> backends)
    {
        var shuffled = backends.ToArray();
        new Random(11).Shuffle(shuffled);
        return [.. shuffled];
    }
}
