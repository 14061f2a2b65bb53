using System.Text.Json;
using Heddle.Testing;
using Heddle.Testing.Hosts;

namespace Heddle.EndToEnd.Tests.Hosts;

/// <summary>
/// A balancer that cannot serve the VIPs (<see cref="BalancerBed"/>): `heddle lb` without `--announce` on a host the
/// VIP pool is not routed to. The operator sees why in `heddle lb list` and `heddle status`, `deploy --wait` fails with
/// the reason instead of reporting success, and the VIP is never moved for it.
/// </summary>
[Collection(BedCollection.Name)]
[Trait("Category", BedCollection.Category)]
public sealed class VipServedTests(BalancerBed bed) : IClassFixture<BalancerBed>
{
    [Fact]
    public async Task ABalancerWithoutTheVipsOnItsHost_SaysSo_AndDeployWaitFailsWithTheReason_AndNothingMoves()
    {
        var lb1 = bed.StartBalancer("lb1");
        try
        {
            var vip = await bed.VipAsync();
            var problem = await Poll.UntilAsync(async () =>
            {
                var run = await bed.ClientAsync(TimeSpan.FromSeconds(30), "lb", "list", "-o", "json");
                using var list = JsonDocument.Parse(run.Stdout);
                return list.RootElement.EnumerateArray().Where(b => b.GetProperty("name").GetString() == "lb1")
                    .SelectMany(b => b.GetProperty("problems").EnumerateArray()).Select(p => p.GetProperty("kind").GetString()).FirstOrDefault();
            }, k => k is not null, TimeSpan.FromSeconds(60), $"lb1 to report what it cannot open\n{bed.Describe()}");
            Assert.Equal("not-local", problem);
            Assert.Contains("the VIP is not an address of this host: give --announce arp or bgp, or route the pool here", lb1.Output);

            // The staging slot gets a VIP of its own, which no balancer can serve either: --wait says so and fails.
            var deploy = await bed.ClientAsync(TimeSpan.FromSeconds(180), "deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath, "--slot", "staging", "--wait");
            Assert.True(deploy.ExitCode == 1, $"deploy --wait with no balancer able to serve the VIP: {deploy}");
            Assert.Contains("every instance is Ready, but no load balancer serves", deploy.Stderr);
            Assert.Contains("the VIP is not an address of lb1's host; run it with --announce arp or bgp, or route the VIP pool to it", deploy.Stderr);

            var status = await bed.ClientAsync(TimeSpan.FromSeconds(30), "status", "hello");
            Assert.Contains("no load balancer serves", status.Stdout + status.Stderr);
            var events = await bed.ClientAsync(TimeSpan.FromSeconds(30), "events");
            Assert.DoesNotContain("VipMoved", events.Stdout);
            Assert.Equal(vip, await bed.VipAsync());
        }
        finally
        {
            await lb1.StopAsync();
            await bed.ClientAsync(TimeSpan.FromSeconds(60), "delete", "hello", "--slot", "staging", "--wait");
        }
    }
}
