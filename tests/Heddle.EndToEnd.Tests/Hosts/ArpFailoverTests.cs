using System.Diagnostics;
using Heddle.Testing;
using Heddle.Testing.Hosts;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests.Hosts;

/// <summary>
/// L2 mode on a flat network (<see cref="BalancerBed"/>): two balancers with `--announce arp --interface eth0`, one owner
/// per VIP that alone answers ARP for it, and a client on the bridge. When the owner is killed, cut off or stopped, the
/// other balancer answers the VIP again within 3 s, and the client's neighbour entry moves to it — never two owners.
/// </summary>
[Collection(BedCollection.Name)]
[Trait("Category", BedCollection.Category)]
public sealed class ArpFailoverTests(BalancerBed bed, ITestOutputHelper output) : IClassFixture<BalancerBed>, IAsyncLifetime
{
    private static readonly TimeSpan AnswersAgainWithin = TimeSpan.FromSeconds(3);
    private readonly Dictionary<string, HostProcess> _balancers = [];

    public Task InitializeAsync()
    {
        foreach (var name in new[] { "lb1", "lb2" })
        {
            _balancers[name] = bed.StartBalancer(name, "--announce", "arp", "--interface", "eth0");
        }

        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var balancer in _balancers.Values.Where(b => !b.HasExited))
        {
            await balancer.StopAsync();
        }
    }

    [Fact]
    public async Task TheOwnerKilled_TheOtherAnswersWithin3s_AndTheClientsNeighbourEntryMoves() =>
        await FailoverAsync("killed (SIGKILL)", owner => { _balancers[owner].Kill(); return Task.CompletedTask; });

    [Fact]
    public async Task TheOwnersLinkCut_TheOtherAnswersWithin3s_AndAfterItHealsOneOwnerStill()
    {
        string? cut = null;
        try
        {
            await FailoverAsync("cut off", async owner => { cut = owner; await bed.Bed[owner].CutAsync(); });
        }
        finally
        {
            if (cut is not null)
            {
                await bed.Bed[cut].HealAsync();
            }
        }

        // Back on the link, the old owner's lease has ended: it stays silent for the VIP (five requests over four seconds).
        var vip = await bed.VipAsync();
        var answers = await bed.ArpAnswersAsync(vip, count: 5);
        Assert.True(answers.Count == 1, $"ARP answers for {vip} from {string.Join(", ", answers)} after the cut healed\n{bed.Describe()}");
    }

    [Fact]
    public async Task TheOwnerStopped_HandsOverAtOnce() =>
        await FailoverAsync("stopped (SIGTERM)", owner => _balancers[owner].StopAsync());

    private async Task FailoverAsync(string how, Func<string, Task> fault)
    {
        var vip = await bed.VipAsync();
        var owner = await SteadyOwnerAsync(vip);
        var other = owner == "lb1" ? "lb2" : "lb1";
        var (ownerMac, otherMac) = (await bed.MacOfAsync(owner), await bed.MacOfAsync(other));
        Assert.Equal([ownerMac], await bed.ArpAnswersAsync(vip));
        Assert.True(await bed.GetAsync("cl", vip, TimeSpan.FromSeconds(2)), $"GET http://{vip}:8080/ from the client before the fault\n{bed.Describe()}");
        Assert.Equal(ownerMac, await bed.NeighbourAsync(vip));

        var clock = Stopwatch.StartNew();
        await fault(owner);
        var faulted = clock.Elapsed;
        var failures = 0;
        while (!await bed.GetAsync("cl", vip, TimeSpan.FromMilliseconds(300)))
        {
            failures++;
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the VIP did not answer again within 30 s of its owner {owner} being {how}\n{bed.Describe()}");
        }

        var after = clock.Elapsed - faulted;
        output.WriteLine($"{vip} answered again {after.TotalSeconds:0.00} s after its owner {owner} was {how} ({failures} requests failed meanwhile)");
        Assert.True(after <= AnswersAgainWithin, $"the VIP answered again {after.TotalSeconds:0.00} s after its owner was {how} (at most {AnswersAgainWithin.TotalSeconds} s)\n{bed.Describe()}");
        Assert.Equal(otherMac, await bed.NeighbourAsync(vip));
        Assert.Equal([otherMac], await bed.ArpAnswersAsync(vip));
        var balancers = await bed.BalancersAsync();
        Assert.Equal([vip], balancers[other].Owned);
    }

    /// <summary>Exactly one balancer owns the VIP, and the client reaches the service through it.</summary>
    private async Task<string> SteadyOwnerAsync(string vip) => (await Poll.UntilAsync(async () =>
    {
        var balancers = await bed.BalancersAsync();
        var owners = balancers.Where(b => b.Value.State == "Up" && b.Value.Owned.Contains(vip)).Select(b => b.Key).ToList();
        return owners.Count == 1 && balancers.Count(b => b.Value.State == "Up") == 2 && await bed.GetAsync("cl", vip, TimeSpan.FromSeconds(2)) ? owners[0] : null;
    }, o => o is not null, TimeSpan.FromSeconds(90), $"one owner of {vip} among two Up balancers, and the VIP answering\n{bed.Describe()}"))!;
}
