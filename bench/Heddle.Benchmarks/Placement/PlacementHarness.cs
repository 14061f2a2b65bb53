using System.Diagnostics;
using System.Globalization;
using Heddle.Placement;
using Heddle.Placement.Checking;
using Heddle.Placement.Cluster;

namespace Heddle.Benchmarks.Placement;

/// <summary>
/// Placement at 10,000 nodes: Heddle's indexed allocator against the baseline that scores every feasible node, on
/// the same cluster and trace, in one run. Each instance is placed with its own call so latency is per placement.
/// Options: --nodes N --instances N --seed N --baseline-instances N (cap the slow baseline; default all).
/// </summary>
internal static class PlacementHarness
{
    public static int Run(string[] args)
    {
        var options = NumberOptions.Parse(args);
        var nodes = options.GetValueOrDefault("nodes", 10_000);
        var instances = options.GetValueOrDefault("instances", 100_000);
        var seed = options.GetValueOrDefault("seed", 42);
        var baselineInstances = options.GetValueOrDefault("baseline-instances", instances);

        var cluster = BenchTrace.Cluster(nodes, faultDomains: 20, cores: 16, threads: 2, memoryMiB: 131_072);
        var requests = BenchTrace.Requests(instances, tenants: 500, seed);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"placement benchmark: {nodes:N0} nodes (20 fault domains, 16 cores x 2 threads, 128 GiB), {instances:N0} instances of 1/2/4/8 CPUs, 500 tenants, seed {seed}"));
        Console.WriteLine($"one thread; process affinity: {AffinityDescription()}");
        Console.WriteLine();

        Warm(cluster);
        var heddle = Measure(AllocatorNames.Indexed, cluster, requests, instances);
        var baseline = Measure(AllocatorNames.Exhaustive, cluster, requests, baselineInstances);

        Console.WriteLine($"{"allocator",-50} {"placed",9} {"failed",8} {"placements/s",13} {"p50 µs",8} {"p99 µs",8} {"max µs",9} {"cores used at 1st failure",26} {"max FD skew",12} {"violations",11}");
        Print("heddle (indexed)", heddle);
        Print("baseline (score every feasible node)", baseline);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"speed-up: {heddle.PerSecond / baseline.PerSecond:0.0}x placements/s over the baseline"));
        Console.WriteLine("targets: >= 100,000 placements/s on one core at 10,000 nodes, p99 < 1 ms, > 90% of cores used before the first failure");
        Console.WriteLine("references: Kubernetes scheduler_perf gates at 680-810 pods/s on 5,000 nodes; Nomad C1M placed 3,750 containers/s with 5 servers");
        return heddle.Violations + baseline.Violations == 0 ? 0 : 1;
    }

    private sealed record Figures(int Placed, int Failed, double PerSecond, double P50, double P99, double Max, double? UtilisationAtFirstFailure, int Skew, int Violations, int Measured);

    private static Figures Measure(string allocatorName, List<NodeSpec> cluster, List<PlacementRequest> requests, int limit)
    {
        var state = new ClusterState(cluster, seed: 1);
        var allocator = AllocatorNames.Create(allocatorName, state);
        var latencies = new List<long>(limit);
        long placingTicks = 0;
        var failed = 0;
        var attempted = 0;
        double? atFirstFailure = null;
        GC.Collect();
        foreach (var request in requests)
        {
            foreach (var slot in request.Instances)
            {
                if (attempted++ == limit)
                {
                    goto done;
                }

                var single = request with { Instances = [slot] };
                var before = state.AllocatedCpus;
                var start = Stopwatch.GetTimestamp();
                var result = allocator.Place(single);
                var ticks = Stopwatch.GetTimestamp() - start;
                if (result.Placed.Count == 1)
                {
                    latencies.Add(ticks);
                    placingTicks += ticks;
                }
                else
                {
                    failed++;
                    atFirstFailure ??= (double)before / state.TotalCpus;
                }
            }
        }

        done:
        latencies.Sort();
        double Micro(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;
        var constraints = (RoleKey _) => (IReadOnlyDictionary<string, string>?)null;
        return new Figures(
            latencies.Count,
            failed,
            latencies.Count / (placingTicks / (double)Stopwatch.Frequency),
            Micro(Percentile(latencies, 0.50)),
            Micro(Percentile(latencies, 0.99)),
            Micro(latencies.Count == 0 ? 0 : latencies[^1]),
            atFirstFailure,
            SpreadMeasure.MaxSkew(state, constraints),
            HardRuleChecker.Check(cluster, state.Placements).Count,
            Math.Min(limit, attempted));
    }

    private static void Print(string name, Figures f)
    {
        var first = f.UtilisationAtFirstFailure is { } u ? string.Create(CultureInfo.InvariantCulture, $"{u * 100:0.0}%") : "no failure";
        var scope = string.Create(CultureInfo.InvariantCulture, $" ({f.Measured:N0} attempted)");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name + scope,-50} {f.Placed,9:N0} {f.Failed,8:N0} {f.PerSecond,13:N0} {f.P50,8:0.0} {f.P99,8:0.0} {f.Max,9:0.0} {first,26} {f.Skew,12} {f.Violations,11}"));
    }

    private static long Percentile(List<long> sorted, double p) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    /// <summary>A small run first so the JIT has compiled the hot paths before anything is timed.</summary>
    private static void Warm(List<NodeSpec> cluster)
    {
        var small = cluster.Take(200).ToList();
        foreach (var name in new[] { AllocatorNames.Indexed, AllocatorNames.Exhaustive })
        {
            var state = new ClusterState(small, seed: 7);
            var allocator = AllocatorNames.Create(name, state);
            foreach (var request in BenchTrace.Requests(3_000, 50, seed: 7))
            {
                foreach (var slot in request.Instances)
                {
                    allocator.Place(request with { Instances = [slot] });
                }
            }
        }
    }

    private static string AffinityDescription()
    {
        var cpus = System.Numerics.BitOperations.PopCount((ulong)(long)Process.GetCurrentProcess().ProcessorAffinity);
        return cpus == 1 ? "pinned to one CPU" : $"{cpus} CPUs (bench/run.sh pins to one with taskset)";
    }
}
