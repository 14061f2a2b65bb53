using System.Diagnostics;
using System.Globalization;
using Heddle.Contracts.Api;

namespace Heddle.Benchmarks.Deploy;

/// <summary>
/// Time from "deployment accepted" to "every instance Ready", for the hello sample on a fresh `heddle up` cluster
/// of 3 nodes each trial (so the package is never already on a node), median of 5 trials, for 3 and for 30
/// instances. Ready is taken from the controller's live event stream, not from polling. Under each row, where the time
/// went (<see cref="DeployPhases"/>).
/// Options: --heddle PATH --package PATH --trials N
/// </summary>
internal static class DeployHarness
{
    public static int Run(string[] args)
    {
        var heddle = Option(args, "--heddle") ?? "artifacts/heddle/heddle";
        var package = Option(args, "--package") ?? "artifacts/hello.hpkg";
        var trials = int.Parse(Option(args, "--trials") ?? "5", CultureInfo.InvariantCulture);
        Console.WriteLine($"deploy benchmark: hello sample, fresh 3-node `heddle up` cluster per trial (package not on the nodes), median of {trials}");
        Console.WriteLine($"machine: {Environment.ProcessorCount} CPUs; instances run as real processes (the web role is ASP.NET Core, the worker a .NET console app)");
        Console.WriteLine();
        // The embedded store (one controller, SQLite) and the replicated one (three controllers on a three-member etcd), in the same run.
        var stores = (Option(args, "--stores") ?? "sqlite,etcd").Split(',');
        Console.WriteLine($"{"store",-22}  {"instances",9}  {"median s",9}  {"min s",7}  {"max s",7}  trials");
        foreach (var store in stores)
        {
            var controllers = store == "etcd" ? 3 : 1;
            foreach (var instances in new[] { 3, 30 })
            {
                var times = new List<double>();
                var phases = new DeployPhases();
                for (var t = 0; t < trials; t++)
                {
                    times.Add(TrialAsync(heddle, package, instances, controllers, phases).GetAwaiter().GetResult());
                }

                times.Sort();
                var label = controllers == 1 ? "sqlite, 1 controller" : "etcd, 3 controllers";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{label,-22}  {instances,9}  {times[times.Count / 2],9:0.000}  {times[0],7:0.000}  {times[^1],7:0.000}  {string.Join(' ', times.Select(x => x.ToString("0.000", CultureInfo.InvariantCulture)))}"));
                phases.Print($"{label}, {instances} instances");
            }
        }

        Console.WriteLine();
        Console.WriteLine("target: under 1 s for 3 instances. References: Kubernetes' SLO is 5 s p99 pod startup with the image already pulled;");
        Console.WriteLine("the cloud fabric Heddle imitates took 20-30 minutes to deploy a service.");
        Console.WriteLine();
        DriverComparison.Run(heddle, trials);
        return 0;
    }

    private static async Task<double> TrialAsync(string heddle, string package, int instances, int controllers, DeployPhases phases)
    {
        await using var cluster = await BenchCluster.StartAsync(heddle, coresPerNode: 12, controllers);
        var upload = await cluster.Api.UploadPackageAsync(package);
        var configuration = $"service: hello\nroles:\n  web: {{ instances: {instances - 1}, settings: {{ Greeting: hi }} }}\n  worker: {{ instances: 1, settings: {{ IntervalSeconds: \"5\" }} }}\n";
        return await AcceptedToReadyAsync(cluster, new DeploymentRequest(upload.Sha256, configuration), instances, phases);
    }

    /// <summary>Seconds from the deploy's acceptance to the last of <paramref name="instances"/> Ready events on the live stream.</summary>
    /// <param name="phases">When given, receives every event of the deploy for its phase table.</param>
    internal static async Task<double> AcceptedToReadyAsync(BenchCluster cluster, DeploymentRequest request, int instances, DeployPhases? phases = null)
    {
        var api = cluster.Api;
        var last = await cluster.LastEventIdAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var ready = new HashSet<string>(StringComparer.Ordinal);
        var seen = new List<(EventRecord, DateTimeOffset)>();
        var watch = Task.Run(async () =>
        {
            await foreach (var e in api.FollowEventsAsync(last, cancel.Token))
            {
                seen.Add((e, DateTimeOffset.UtcNow));
                if (e.Kind == "InstanceState" && e.Message.StartsWith("Ready", StringComparison.Ordinal) && ready.Add(e.Subject) && ready.Count == instances)
                {
                    return Stopwatch.GetTimestamp();
                }
            }

            throw new InvalidOperationException("the event stream ended");
        });
        await api.DeployAsync(request);
        var accepted = Stopwatch.GetTimestamp();
        var done = await watch;
        await cancel.CancelAsync();
        phases?.Add(seen);
        return (done - accepted) / (double)Stopwatch.Frequency;
    }

    /// <summary>The value after <paramref name="name"/> on the command line, if given.</summary>
    internal static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
