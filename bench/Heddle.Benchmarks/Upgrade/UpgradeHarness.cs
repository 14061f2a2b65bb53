using System.Diagnostics;
using System.Globalization;
using Heddle.Benchmarks.Deploy;
using Heddle.Contracts.Api;

namespace Heddle.Benchmarks.Upgrade;

/// <summary>
/// A settings change of the hello sample walked over its 3 upgrade domains with healthCheckStable 0s on `heddle up`:
/// time from accepted to Completed (from the controller's event stream), median of N, and the failed requests of a
/// client loop through the service VIP during each walk. The same run measures, as the floor a walk is compared with,
/// a fresh deploy of the same 4 instances all at once (no drain, no gate: what an outage-taking restart costs).
/// Options: --heddle PATH --package PATH --trials N
/// </summary>
internal static class UpgradeHarness
{
    public static int Run(string[] args)
    {
        var heddle = DeployHarness.Option(args, "--heddle") ?? "artifacts/heddle/heddle";
        var package = DeployHarness.Option(args, "--package") ?? "artifacts/hello.hpkg";
        var trials = int.Parse(DeployHarness.Option(args, "--trials") ?? "5", CultureInfo.InvariantCulture);
        return RunAsync(heddle, package, trials).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(string heddle, string package, int trials)
    {
        Console.WriteLine($"upgrade benchmark: hello sample (3 web instances in 3 upgrade domains + 1 worker), settings change, healthCheckStable 0s, median of {trials}");
        Console.WriteLine($"machine: {Environment.ProcessorCount} CPUs; a client loop sends HTTP requests through the service VIP, one connection each, during every walk");
        await using var cluster = await BenchCluster.StartAsync(heddle, coresPerNode: 4);
        var api = cluster.Api;
        var upload = await api.UploadPackageAsync(package);

        var fresh = await TimeAsync(cluster, upload.Sha256, Configuration("v0"), e => e.Kind == "InstanceState" && e.Message.StartsWith("Ready", StringComparison.Ordinal), count: 4);
        var vip = (await api.GetServiceAsync("hello")).Vip ?? throw new InvalidOperationException("the sample got no VIP");
        var walks = new List<double>();
        var failures = new List<int>();
        var requests = new List<int>();
        for (var t = 1; t <= trials; t++)
        {
            using var loop = new RequestLoop($"http://{vip}:8080/");
            var seconds = await TimeAsync(cluster, upload.Sha256, Configuration($"v{t}"), e => e.Kind is "UpgradeCompleted" or "UpgradeRolledBack" or "UpgradePaused", count: 1);
            var (ok, failed) = await loop.StopAsync();
            var upgrade = await api.GetUpgradeAsync("hello");
            if (upgrade.State != UpgradeStates.Completed)
            {
                Console.Error.WriteLine($"trial {t}: the walk ended {upgrade.State}: {upgrade.Reason}");
                return 1;
            }

            walks.Add(seconds);
            failures.Add(failed);
            requests.Add(ok + failed);
        }

        var sorted = walks.Order().ToList();
        Console.WriteLine();
        Console.WriteLine($"{"",-38}  {"median s",9}  {"min s",7}  {"max s",7}  trials");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"Heddle upgrade walk, 3 UDs",-38}  {sorted[sorted.Count / 2],9:0.000}  {sorted[0],7:0.000}  {sorted[^1],7:0.000}  {string.Join(' ', walks.Select(w => w.ToString("0.000", CultureInfo.InvariantCulture)))}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"reference: fresh deploy, all at once",-38}  {fresh,9:0.000}  {"",7}  {"",7}  1 (same run, same cluster)"));
        Console.WriteLine($"failed requests through the VIP during the walks: {string.Join(' ', failures)} (of {string.Join(' ', requests)} requests)");
        Console.WriteLine();
        Console.WriteLine("target: 0 failed requests and under 3 s. Documented defaults elsewhere put a floor under a 3-domain walk:");
        Console.WriteLine("Service Fabric HealthCheckStableDuration 120 s per domain (>= 6 min), Nomad min_healthy_time 10 s per batch (>= 30 s for 3),");
        Console.WriteLine("Heddle's own default healthCheckStable 10 s (>= 30 s); this run sets it to 0 s to measure the walk's own cost.");
        return failures.Sum() == 0 ? 0 : 1;
    }

    private static string Configuration(string greeting) =>
        $"service: hello\nroles:\n  web: {{ instances: 3, settings: {{ Greeting: {greeting} }} }}\n  worker: {{ instances: 1, settings: {{ IntervalSeconds: \"5\" }} }}\nupgrade: {{ healthCheckStable: 0s }}\n";

    /// <summary>Seconds from the deploy's answer to the <paramref name="count"/>-th event matching <paramref name="done"/>.</summary>
    internal static async Task<double> TimeAsync(BenchCluster cluster, string sha256, string configuration, Func<EventRecord, bool> done, int count)
    {
        var last = await cluster.LastEventIdAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var watch = Task.Run(async () =>
        {
            await foreach (var e in cluster.Api.FollowEventsAsync(last, cancel.Token))
            {
                if (done(e) && seen.Add($"{e.Subject}#{e.Id}") && seen.Count == count)
                {
                    return Stopwatch.GetTimestamp();
                }
            }

            throw new InvalidOperationException("the event stream ended");
        });
        await cluster.Api.DeployAsync(new DeploymentRequest(sha256, configuration));
        var accepted = Stopwatch.GetTimestamp();
        var end = await watch;
        await cancel.CancelAsync();
        return (end - accepted) / (double)Stopwatch.Frequency;
    }

    /// <summary>Requests one after another, each on a new connection, until stopped.</summary>
    private sealed class RequestLoop : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task<(int Ok, int Failed)> _loop;

        public RequestLoop(string url) => _loop = Task.Run(() => LoopAsync(url));

        public async Task<(int Ok, int Failed)> StopAsync()
        {
            await _stop.CancelAsync();
            return await _loop;
        }

        public void Dispose() => _stop.Dispose();

        private async Task<(int Ok, int Failed)> LoopAsync(string url)
        {
            using var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero };
            using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
            var (ok, failed) = (0, 0);
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await http.GetAsync(url, _stop.Token);
                    if (response.IsSuccessStatusCode)
                    {
                        ok++;
                    }
                    else
                    {
                        failed++;
                    }
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    failed++;
                }
            }

            return (ok, failed);
        }
    }
}
