using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.Health;
using Heddle.Testing;

namespace Heddle.LoadBalancer.Tests.Health;

public sealed class BackendHealthTests
{
    [Fact]
    public async Task BackendsThatGoAwayTogether_LeaveThePoolInOneOrTwoNewPools_NotOneEach()
    {
        var backends = Enumerable.Range(0, 20).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        backends.ForEach(b => b.Start());
        var pools = new ConcurrentQueue<int>();
        await using (var health = new BackendHealth(new CountingListener(pools)))
        {
            health.Update([.. backends.Select((b, i) => new Backend($"b{i}", "127.0.0.1", ((IPEndPoint)b.LocalEndpoint).Port))], new BackendProbe("tcp", null, 50, 500, UnhealthyThreshold: 1));
            await Poll.UntilAsync(() => Task.FromResult(health.ReadProbes()), p => p.All(x => x.Passed > 0), TimeSpan.FromSeconds(10), "every backend passed a probe");
            var before = pools.Count;

            backends.ForEach(b => b.Stop()); // the host of all twenty went away

            await Poll.UntilAsync(() => Task.FromResult(pools.LastOrDefault(-1)), n => n == 0, TimeSpan.FromSeconds(10), "the pool empty");
            Assert.InRange(pools.Count - before, 1, 3); // one new pool per backend before: 20
        }
    }

    [Fact]
    public async Task TheControllersList_IsTakenAtOnce_NotBatched()
    {
        var pools = new ConcurrentQueue<int>();
        await using var health = new BackendHealth(new CountingListener(pools));

        health.Update([new Backend("b0", "127.0.0.1", 1), new Backend("b1", "127.0.0.1", 2)], settings: null);

        Assert.Equal([2], pools); // before Update returned
    }

    private sealed class CountingListener(ConcurrentQueue<int> pools) : IVipListener
    {
        public void Update(IReadOnlyList<Backend> backends) => pools.Enqueue(backends.Count);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
