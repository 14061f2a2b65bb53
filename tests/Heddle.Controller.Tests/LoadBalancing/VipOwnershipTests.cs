using Heddle.Contracts.Api;
using Heddle.Controller.LoadBalancing;
using Heddle.Controller.Store;

namespace Heddle.Controller.Tests.LoadBalancing;

/// <summary>One owner per VIP among the healthy ARP balancers, held by a lease: who claims, renews, keeps and releases.</summary>
public sealed class VipOwnershipTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);
    private static readonly BalancerTiming Timing = BalancerTiming.Default;
    private const string Vip = "198.18.0.200";

    private static BalancerRecord Balancer(string name, DateTimeOffset heard, bool healthy = true, string mode = BalancerModes.Arp, params ListenerProblem[] problems) =>
        new(name, name + "-1", "198.18.0." + name[^1], mode, "eth0", healthy, "arp on eth0", [], 1, problems, heard);

    private static IReadOnlyList<OwnerChange> Decide(BalancerRecord self, IEnumerable<BalancerRecord> others, params VipOwnerRecord[] owners) =>
        VipOwnership.Decide(self, [.. others, self], owners, [Vip], Now, Timing);

    /// <summary>The balancer of two that rendezvous hashing prefers for <see cref="Vip"/>, and the other.</summary>
    private static (BalancerRecord Preferred, BalancerRecord Other) Pair()
    {
        var (a, b) = (Balancer("lb1", Now), Balancer("lb2", Now));
        var preferred = VipOwnership.Preferred(Vip, [a, b]);
        return preferred.Name == a.Name ? (a, b) : (b, a);
    }

    [Fact]
    public void AnUnownedVip_IsClaimedByThePreferredBalancer_AndOnlyByIt()
    {
        var (preferred, other) = Pair();

        Assert.Empty(Decide(other, [preferred]));
        var claim = Assert.Single(Decide(preferred, [other]));

        Assert.Equal(new VipOwnerRecord(Vip, preferred.Name, Now, Now), claim.Owner);
    }

    [Fact]
    public void TheOwner_RenewsItsLease_AndALiveOwnerKeepsTheVip_EvenFromThePreferredBalancer()
    {
        var (preferred, other) = Pair();
        var owner = new VipOwnerRecord(Vip, other.Name, Now.AddMinutes(-5), Now.AddMilliseconds(-400));

        Assert.Equal(owner with { Renewed = Now }, Assert.Single(Decide(other, [preferred], owner)).Owner);
        Assert.Empty(Decide(preferred, [other], owner));
    }

    [Fact]
    public void AnOwnerSilentPastItsLeaseAndTheSkew_LosesTheVip_NotBefore()
    {
        var (preferred, other) = Pair();
        var justAlive = new VipOwnerRecord(Vip, other.Name, Now.AddMinutes(-5), Now - Timing.Lease - Timing.ClockSkew);
        var expired = justAlive with { Renewed = justAlive.Renewed.AddMilliseconds(-1) };
        var silent = other with { HeardAt = expired.Renewed };

        Assert.Empty(Decide(preferred, [silent], justAlive));
        Assert.Equal(preferred.Name, Assert.Single(Decide(preferred, [silent], expired)).Owner!.Balancer);
    }

    [Fact]
    public void WhenThePreferredBalancerIsSilentOrUnhealthy_TheOtherClaims()
    {
        var (preferred, other) = Pair();

        Assert.Equal(other.Name, Assert.Single(Decide(other, [preferred with { HeardAt = Now - Timing.Lease - TimeSpan.FromSeconds(1) }])).Owner!.Balancer);
        Assert.Equal(other.Name, Assert.Single(Decide(other, [preferred with { Healthy = false }])).Owner!.Balancer);
        Assert.Equal(other.Name, Assert.Single(Decide(other, [preferred with { Mode = BalancerModes.Bgp }])).Owner!.Balancer);
    }

    [Fact]
    public void AnOwnerThatReportsItselfUnhealthy_OrUnableToOpenTheVip_ReleasesItAtOnce()
    {
        var (preferred, other) = Pair();
        var owner = new VipOwnerRecord(Vip, preferred.Name, Now.AddMinutes(-1), Now.AddMilliseconds(-400));

        Assert.Null(Assert.Single(Decide(preferred with { Healthy = false }, [other], owner)).Owner);
        var cannot = preferred with { Problems = [new ListenerProblem("hello", Vip, 80, "Address already in use")] };
        Assert.Null(Assert.Single(Decide(cannot, [other], owner)).Owner);
        Assert.Empty(Decide(other, [cannot], owner with { Renewed = Now.AddSeconds(-1) })); // still the lease's until released or expired
    }

    [Fact]
    public void TheOwnerOfAVipNoLongerServed_ReleasesIt_AndABalancerLeavingArpModeReleasesAll()
    {
        var (preferred, other) = Pair();
        var gone = new VipOwnerRecord("198.18.0.201", preferred.Name, Now.AddMinutes(-1), Now.AddMilliseconds(-400));
        var owner = new VipOwnerRecord(Vip, preferred.Name, Now.AddMinutes(-1), Now.AddMilliseconds(-400));

        var changes = Decide(preferred, [other], gone, owner);
        Assert.Contains(changes, c => c.Vip == gone.Vip && c.Owner is null);
        Assert.Contains(changes, c => c.Vip == Vip && c.Owner == owner with { Renewed = Now });

        Assert.All(Decide(preferred with { Mode = BalancerModes.Bgp }, [other], gone, owner), c => Assert.Null(c.Owner));
    }

    [Fact]
    public void EveryControllerPicksTheSameBalancer_AndVipsSpreadOverBalancers()
    {
        var balancers = Enumerable.Range(1, 3).Select(i => Balancer($"lb{i}", Now)).ToList();
        var vips = Enumerable.Range(1, 300).Select(i => $"198.18.1.{i % 250}-{i}").ToList();

        var picks = vips.Select(v => VipOwnership.Preferred(v, balancers).Name).ToList();

        Assert.Equal(picks, vips.Select(v => VipOwnership.Preferred(v, [.. Enumerable.Reverse(balancers)]).Name));
        Assert.All(balancers, b => Assert.InRange(picks.Count(p => p == b.Name), 60, 140));
    }
}
