using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Heddle.Controller.Dashboard;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Heddle.Testing;

namespace Heddle.Benchmarks.Dashboard;

/// <summary>
/// The cluster page at 10,000 nodes: how long the controller takes to render it and how big it is, for the summary
/// (every fault domain), one fault domain drawn, and a tenant's view, against the reference of serialising the same
/// nodes and instances as JSON (what `heddle nodes -o json` and `heddle instances -o json` fetch), in the same run.
/// Options: --nodes N --instances N --domains N --rounds N.
/// </summary>
internal static class DashboardHarness
{
    public static int Run(string[] args)
    {
        var options = NumberOptions.Parse(args);
        var nodes = options.GetValueOrDefault("nodes", 10_000);
        var instances = options.GetValueOrDefault("instances", 100_000);
        var domains = options.GetValueOrDefault("domains", 50);
        var rounds = options.GetValueOrDefault("rounds", 20);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"dashboard benchmark: {nodes:N0} nodes in {domains} fault domains (16 cores x 2 threads, 128 GiB), {instances:N0} instances of 1 CPU in {instances / 100:N0} services of 100, 20 tenants; {rounds} rounds each"));

        var filling = Stopwatch.StartNew();
        using var store = Fill(nodes, instances, domains).GetAwaiter().GetResult();
        Console.WriteLine($"store filled in {filling.Elapsed.TotalSeconds:0.0} s (in memory)");
        Console.WriteLine();

        var admin = Caller.Admin;
        var tenant = new Caller("tenant-3", "bench");
        Console.WriteLine($"{"what",-58} {"median ms",10} {"p90 ms",8} {"KiB",9}");
        Measure("cluster page, all domains summarised (admin)", rounds, () => ClusterPage.Render(store, admin, null, 1).Live);
        Measure("cluster page, one domain drawn, first page (admin)", rounds, () => ClusterPage.Render(store, admin, "fd7", 1).Live);
        Measure("cluster page, a tenant's nodes (tenant-3)", rounds, () => ClusterPage.Render(store, tenant, null, 1).Live);
        Console.WriteLine("reference:");
        Measure("JSON of every node (heddle nodes -o json)", rounds, () => JsonSerializer.Serialize(store.ListNodes()));
        Measure("JSON of every instance (heddle instances -o json)", rounds, () => JsonSerializer.Serialize(store.ListInstances()));
        Console.WriteLine();
        Console.WriteLine($"a page draws at most {ClusterPage.MostNodesDrawn} nodes; past that it summarises fault domains and draws one at a time, a page at a time");
        return 0;
    }

    private static async Task<KvClusterStore> Fill(int nodeCount, int instanceCount, int domains)
    {
        var store = KvStores.InMemory(TimeProvider.System);
        var now = DateTimeOffset.UtcNow;
        var cores = Enumerable.Range(0, 16).Select(c => (IReadOnlyList<int>)[c, c + 16]).ToList();
        for (var n = 0; n < nodeCount; n++)
        {
            await store.PutNodeAsync(new NodeRecord
            {
                Name = $"n{n:D5}", Address = $"10.{n / 65536}.{n / 256 % 256}.{n % 256}", FaultDomain = $"fd{n % domains}", Labels = new Dictionary<string, string>(),
                MemoryMiB = 131_072, Cores = cores, Condition = n % 97 == 0 ? NodeCondition.Down : NodeCondition.Ready, LastSeen = now,
            });
        }

        var next = 0;
        for (var s = 0; s < instanceCount / 100; s++)
        {
            var name = $"svc{s:D4}";
            await store.PutDeploymentAsync(new DeploymentWrite(name, $"tenant-{s % 20}", 1, new string('a', 64), $"service: {name}", "first", 0));
            var placed = new List<InstanceRecord>();
            for (var i = 0; i < 100; i++, next++)
            {
                placed.Add(new InstanceRecord
                {
                    Service = name, Role = "web", Index = i, UpgradeDomain = i % 5, Node = $"n{next % nodeCount:D5}", Cpus = [next / nodeCount % 32],
                    MemoryMiB = 512, Generation = next + 1, Revision = 1, RunningRevision = 1, State = Heddle.Controller.Store.InstanceState.Ready,
                });
            }

            await store.CommitPlacementAsync(new PlacementCommit(name, store.GetService(name)!.Version, placed, []));
        }

        return store;
    }

    private static void Measure(string what, int rounds, Func<string> render)
    {
        var size = render().Length; // warm
        var times = new List<double>(rounds);
        for (var i = 0; i < rounds; i++)
        {
            var clock = Stopwatch.StartNew();
            size = render().Length;
            times.Add(clock.Elapsed.TotalMilliseconds);
        }

        times.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what,-58} {times[times.Count / 2],10:0.0} {times[(int)(times.Count * 0.9)],8:0.0} {size / 1024.0,9:0}"));
    }
}
