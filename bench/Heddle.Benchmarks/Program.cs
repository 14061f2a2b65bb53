using Heddle.Benchmarks.Deploy;
using Heddle.Benchmarks.Dns;
using Heddle.Benchmarks.LoadBalancer;
using Heddle.Benchmarks.Placement;
using Heddle.Benchmarks.Upgrade;

// Whole-system harnesses: each prints its own figures and the reference's figures from the same run.
var harnesses = new Dictionary<string, Func<string[], int>>(StringComparer.Ordinal)
{
    ["placement"] = PlacementHarness.Run,
    ["deploy"] = DeployHarness.Run,
    ["dns"] = DnsHarness.Run,
    ["dns-serve"] = DnsHarness.Serve, // the dns harness's own child process
    ["lb"] = LbHarness.Run,
    ["upgrade"] = UpgradeHarness.Run,
    ["swap"] = SwapHarness.Run,
    ["failover"] = FailoverHarness.Run,
    ["isolation"] = Heddle.Benchmarks.Isolation.LaunchCostHarness.Run,
    ["scale"] = Heddle.Benchmarks.Scale.ScaleHarness.Run,
    ["dashboard"] = Heddle.Benchmarks.Dashboard.DashboardHarness.Run,
    ["store"] = Heddle.Benchmarks.Store.StoreCommitHarness.Run,
};

if (args.Length == 0 || !harnesses.TryGetValue(args[0], out var harness))
{
    Console.Error.WriteLine($"usage: Heddle.Benchmarks <{string.Join('|', harnesses.Keys)}> [options]");
    return 2;
}

return harness(args[1..]);
