using System.Diagnostics;
using System.Globalization;
using Heddle.Contracts.Api;

namespace Heddle.Benchmarks.Deploy;

/// <summary>
/// Controller failover under `heddle up --controllers 3`: the leader killed with -9, then the time to a new leader
/// acting (its LeaderElected event, stamped by its own clock on this machine) and to the next deployment accepted
/// (a settings change, sent in a loop through the CLI's failover client). The reference, from the same run: one
/// controller on SQLite killed with -9 and started again by `heddle up`, to its next accepted deployment.
/// Options: --heddle PATH --package PATH --trials N
/// </summary>
internal static class FailoverHarness
{
    public static int Run(string[] args)
    {
        var heddle = DeployHarness.Option(args, "--heddle") ?? "artifacts/heddle/heddle";
        var package = DeployHarness.Option(args, "--package") ?? "artifacts/hello.hpkg";
        var trials = int.Parse(DeployHarness.Option(args, "--trials") ?? "5", CultureInfo.InvariantCulture);
        Console.WriteLine($"failover benchmark: hello sample (4 instances) on a 3-node `heddle up`, the leader killed with -9, median of {trials}");
        Console.WriteLine($"machine: {Environment.ProcessorCount} CPUs; lease 3 s, renewed every 1 s");
        Console.WriteLine();
        var replicated = MeasureAsync(heddle, package, trials, controllers: 3).GetAwaiter().GetResult();
        var single = MeasureAsync(heddle, package, trials, controllers: 1).GetAwaiter().GetResult();
        Console.WriteLine($"{"cluster",-40}  {"to a new leader s",17}  {"to the next deploy s",20}  trials (leader | deploy)");
        Print("etcd, 3 controllers: another one leads", replicated);
        Print("sqlite, 1 controller: restarted (ref.)", single);
        Console.WriteLine();
        Console.WriteLine("target: a new leader within 5 s. References: Borg reports about 10 s to fail over its master; Kubernetes' default");
        Console.WriteLine("leader election (lease 15 s, renew deadline 10 s, retry 2 s) takes up to 15 s after a crash.");
        return 0;
    }

    private static void Print(string label, List<(double Leader, double Deploy)> times)
    {
        var leaders = times.Select(t => t.Leader).Order().ToList();
        var deploys = times.Select(t => t.Deploy).Order().ToList();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label,-40}  {leaders[leaders.Count / 2],17:0.000}  {deploys[deploys.Count / 2],20:0.000}  {string.Join(' ', times.Select(t => t.Leader.ToString("0.00", CultureInfo.InvariantCulture)))} | {string.Join(' ', times.Select(t => t.Deploy.ToString("0.00", CultureInfo.InvariantCulture)))}"));
    }

    private static async Task<List<(double Leader, double Deploy)>> MeasureAsync(string heddle, string package, int trials, int controllers)
    {
        await using var cluster = await BenchCluster.StartAsync(heddle, coresPerNode: 2, controllers);
        var upload = await cluster.Api.UploadPackageAsync(package);
        // A settings change walked over the upgrade domains; a short health gate, so that the walk is done before the next trial.
        string Configuration(int n) => $"service: hello\nroles:\n  web: {{ instances: 3, settings: {{ Greeting: hi{n} }} }}\n  worker: {{ instances: 1, settings: {{ IntervalSeconds: \"5\" }} }}\nupgrade: {{ healthCheckStable: 1s }}\n";
        await DeployHarness.AcceptedToReadyAsync(cluster, new DeploymentRequest(upload.Sha256, Configuration(0)), 4);
        var results = new List<(double, double)>();
        for (var trial = 1; trial <= trials; trial++)
        {
            var info = await cluster.Api.InfoAsync();
            var leader = info.Leader ?? info.ApiUrl;
            var (_, pids) = cluster.Processes();
            var pid = pids.TryGetValue(leader, out var p) ? p : cluster.Processes().Pids["controller"];
            var killedAt = DateTimeOffset.UtcNow;
            var clock = Stopwatch.StartNew();
            Process.GetProcessById(pid).Kill();

            // The next deployment accepted (sent again until one is: the client moves to another controller when one does not answer).
            double deployed;
            while (true)
            {
                try
                {
                    await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration(trial)));
                    deployed = clock.Elapsed.TotalSeconds;
                    break;
                }
                catch (Exception e) when (e is HeddleApiException or HttpRequestException or IOException)
                {
                    await Task.Delay(20);
                }
            }

            // The new leader's first act: its LeaderElected event (with one controller, the restarted one's first answer stands for it).
            var elected = deployed;
            if (controllers > 1)
            {
                while (true)
                {
                    var events = await cluster.Api.ListEventsAsync();
                    if (events.LastOrDefault(e => e.Kind == "LeaderElected" && e.Time > killedAt && e.Subject != leader) is { } e)
                    {
                        elected = (e.Time - killedAt).TotalSeconds;
                        break;
                    }

                    await Task.Delay(20);
                }
            }

            results.Add((elected, deployed));
            // Before the next trial: the killed controller is back (heddle up starts it again) and the change has been walked.
            while (cluster.Processes().Pids.ContainsValue(pid))
            {
                await Task.Delay(50);
            }

            while ((await cluster.Api.GetServiceAsync("hello")) is var s && !(s.Instances.Count == 4 && s.Instances.All(i => i.State == "Ready" && i.RunningRevision == s.Revision)
                && s.Upgrade is null or UpgradeStates.Completed or UpgradeStates.RolledBack))
            {
                await Task.Delay(100);
            }
        }

        return results;
    }
}
