using System.Diagnostics;
using System.Globalization;
using Heddle.Benchmarks.Deploy;
using Heddle.Contracts.Api;

namespace Heddle.Benchmarks.Upgrade;

/// <summary>
/// `heddle swap` of the hello sample on `heddle up` (production and staging, 3 web instances each, different
/// greetings), with a client loop through the production VIP (a new connection per request): the swap call's own
/// time, and the time from the swap request to the start of the last request that still reached an old instance,
/// median of N swaps (back and forth), with the failed requests. The same run measures the same change made the other
/// way, as an upgrade walk of production (healthCheckStable 0s): accepted → Completed, and its failed requests.
/// Options: --heddle PATH --package PATH --trials N
/// </summary>
internal static class SwapHarness
{
    public static int Run(string[] args)
    {
        var heddle = DeployHarness.Option(args, "--heddle") ?? "artifacts/heddle/heddle";
        var package = DeployHarness.Option(args, "--package") ?? "artifacts/hello.hpkg";
        var trials = int.Parse(DeployHarness.Option(args, "--trials") ?? "5", CultureInfo.InvariantCulture);
        return RunAsync(heddle, package, trials).GetAwaiter().GetResult();
    }

    private static string Configuration(string greeting) =>
        $"service: hello\nroles:\n  web: {{ instances: 3, settings: {{ Greeting: {greeting} }} }}\n  worker: {{ instances: 1, settings: {{ IntervalSeconds: \"5\" }} }}\nupgrade: {{ healthCheckStable: 0s }}\n";

    private static async Task<int> RunAsync(string heddle, string package, int trials)
    {
        Console.WriteLine($"swap benchmark: hello sample, production and staging (3 web + 1 worker each), {trials} swaps back and forth");
        Console.WriteLine($"machine: {Environment.ProcessorCount} CPUs; a client loop sends HTTP requests through the production VIP, one connection each");
        await using var cluster = await BenchCluster.StartAsync(heddle, coresPerNode: 4);
        var api = cluster.Api;
        var upload = await api.UploadPackageAsync(package);
        await api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("blue")));
        await api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration("green"), Slot: "staging"));
        foreach (var slot in new[] { "production", "staging" })
        {
            await WaitAsync(() => api.GetServiceAsync("hello", slot), s => s.Instances.Count == 4 && s.Instances.All(i => i.State == InstanceStates.Ready));
        }

        var vip = (await api.GetServiceAsync("hello")).Vip!;
        var calls = new List<double>();
        var lastOld = new List<double>();
        var failures = new List<int>();
        var requests = new List<int>();
        var expected = "green";
        for (var t = 0; t < trials; t++)
        {
            var old = expected == "green" ? "blue" : "green";
            using var loop = new AnswerLoop($"http://{vip}:8080/");
            await WaitAsync(() => Task.FromResult(loop.Last), a => a == old);
            var requested = Stopwatch.GetTimestamp();
            await api.SwapAsync("hello");
            var answered = Stopwatch.GetTimestamp();
            await WaitAsync(() => Task.FromResult(loop.Last), a => a == expected);
            await Task.Delay(500); // keep asking: an old answer after this would count too
            var answers = await loop.StopAsync();
            var afterRequest = answers.Where(a => a.Started >= requested && a.Greeting == old).Select(a => (a.Started - requested) * 1000.0 / Stopwatch.Frequency).DefaultIfEmpty(0).Max();
            calls.Add((answered - requested) * 1000.0 / Stopwatch.Frequency);
            lastOld.Add(afterRequest);
            failures.Add(answers.Count(a => a.Greeting is null));
            requests.Add(answers.Count);
            expected = old;
        }

        // The same change as an upgrade walk of production: what a swap saves.
        using var walkLoop = new AnswerLoop($"http://{vip}:8080/");
        var walk = await UpgradeHarness.TimeAsync(cluster, upload.Sha256, Configuration("walked"), e => e.Kind is "UpgradeCompleted" or "UpgradeRolledBack" or "UpgradePaused", count: 1);
        var walkAnswers = await walkLoop.StopAsync();

        Console.WriteLine();
        Console.WriteLine($"{"",-52}  {"median ms",10}  {"max ms",8}  trials");
        Row("swap call (request → answer)", calls);
        Row("swap request → last request reaching an old instance", lastOld);
        Console.WriteLine($"failed requests during the swaps: {string.Join(' ', failures)} (of {string.Join(' ', requests)} requests)");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"reference, same run: the same change as an upgrade walk of production over 3 UDs: {walk * 1000:0} ms accepted → Completed, {walkAnswers.Count(a => a.Greeting is null)} failed of {walkAnswers.Count} requests"));
        Console.WriteLine("target: under 100 ms from the swap request to the last new connection reaching an old instance, 0 failed.");
        return failures.Sum() == 0 ? 0 : 1;
    }

    private static void Row(string what, List<double> values)
    {
        var sorted = values.Order().ToList();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what,-52}  {sorted[sorted.Count / 2],10:0.0}  {sorted[^1],8:0.0}  {string.Join(' ', values.Select(v => v.ToString("0.0", CultureInfo.InvariantCulture)))}"));
    }

    private static async Task WaitAsync<T>(Func<Task<T>> probe, Func<T, bool> done)
    {
        var clock = Stopwatch.StartNew();
        while (!done(await probe()))
        {
            if (clock.Elapsed > TimeSpan.FromMinutes(2))
            {
                throw new TimeoutException("the cluster did not get there in 2 minutes");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Requests one after another, each on a new connection: when each started and the greeting it got (null: failed).</summary>
    private sealed class AnswerLoop : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly List<(long Started, string? Greeting)> _answers = [];
        private readonly Task _loop;

        public AnswerLoop(string url) => _loop = Task.Run(() => LoopAsync(url));

        public string? Last
        {
            get
            {
                lock (_answers)
                {
                    return _answers.Count == 0 ? null : _answers[^1].Greeting;
                }
            }
        }

        public async Task<List<(long Started, string? Greeting)>> StopAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            lock (_answers)
            {
                return [.. _answers];
            }
        }

        public void Dispose() => _stop.Dispose();

        private async Task LoopAsync(string url)
        {
            using var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero, UseProxy = false };
            using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
            while (!_stop.IsCancellationRequested)
            {
                var started = Stopwatch.GetTimestamp();
                string? greeting;
                try
                {
                    greeting = (await http.GetStringAsync(url, _stop.Token)).Split(' ')[0];
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    greeting = null;
                }

                lock (_answers)
                {
                    _answers.Add((started, greeting));
                }
            }
        }
    }
}
