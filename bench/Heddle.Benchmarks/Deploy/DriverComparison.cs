using System.Globalization;
using Heddle.Contracts.Api;
using Heddle.Model.Diagnostics;
using Heddle.Packaging;

namespace Heddle.Benchmarks.Deploy;

/// <summary>
/// The same service under each driver, in the same run: busybox httpd (the static sample's role) as a `process`
/// instance on the host and as a `container` instance in a busybox image, deploy accepted → all Ready on a fresh
/// 3-node `heddle up` per trial (the container trials include each node's first image download and unpack).
/// The issue's targets: the container driver within 150 ms per instance of the process driver; the process driver's 3 under
/// 300 ms and 30 under 1.5 s (a trivial service).
/// </summary>
internal static class DriverComparison
{
    public static void Run(string heddle, int trials)
    {
        var work = Directory.CreateTempSubdirectory("heddle-bench-drivers-");
        try
        {
            var image = Heddle.Testing.TestImages.Tar();
            Console.WriteLine($"drivers: the static sample's busybox httpd role, process vs container (image {new FileInfo(image).Length >> 20} MiB, busybox-static), median of {trials}");
            Console.WriteLine($"{"instances",9}  {"process s",10}  {"container s",12}  {"extra ms/instance",18}  trials (process | container)");
            foreach (var instances in new[] { 3, 12, 30 })
            {
                var processPhases = new DeployPhases();
                var containerPhases = new DeployPhases();
                var process = Trials(heddle, work.FullName, "process", instances, image, trials, processPhases);
                var container = Trials(heddle, work.FullName, "container", instances, image, trials, containerPhases);
                var extra = (container[container.Count / 2] - process[process.Count / 2]) * 1000 / instances;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{instances,9}  {process[process.Count / 2],10:0.000}  {container[container.Count / 2],12:0.000}  {extra,18:0}  {Join(process)} | {Join(container)}"));
                processPhases.Print($"process, {instances} instances");
                containerPhases.Print($"container, {instances} instances");
            }

            Console.WriteLine("target: container within 150 ms per instance of process (runc create + start measured ~70 ms on this host).");
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    private static List<double> Trials(string heddle, string work, string driver, int instances, string image, int trials, DeployPhases phases)
    {
        var package = Package(work, driver);
        var times = new List<double>();
        for (var t = 0; t < trials; t++)
        {
            times.Add(TrialAsync(heddle, package, driver, instances, image, phases).GetAwaiter().GetResult());
        }

        times.Sort();
        return times;
    }

    private static async Task<double> TrialAsync(string heddle, string package, string driver, int instances, string image, DeployPhases phases)
    {
        await using var cluster = await BenchCluster.StartAsync(heddle, coresPerNode: 12);
        if (driver == "container")
        {
            await cluster.Api.UploadImageAsync("bench-busybox", image);
        }

        var upload = await cluster.Api.UploadPackageAsync(package);
        return await DeployHarness.AcceptedToReadyAsync(cluster, new DeploymentRequest(upload.Sha256, $"service: static\nroles:\n  web: {{ instances: {instances} }}\n"), instances, phases);
    }

    private static string Package(string work, string driver)
    {
        var source = Path.Combine(work, driver);
        Directory.CreateDirectory(Path.Combine(source, "roles", "web", "www"));
        File.WriteAllText(Path.Combine(source, "roles", "web", "www", "index.html"), "<p>bench</p>\n");
        File.WriteAllText(Path.Combine(source, "service.yaml"), $$"""
            name: static
            upgradeDomains: 3
            roles:
              web:
                driver: {{driver}}
                {{(driver == "container" ? "image: bench-busybox" : string.Empty)}}
                entryPoint: { command: /bin/sh, args: [-c, 'exec busybox httpd -f -p "$HEDDLE_ADDRESS:$HEDDLE_PORT_HTTP" -h www'] }
                size: { cores: 1, memoryMiB: 64 }
                endpoints:
                  http: { kind: input, protocol: http, port: 8080 }
                probe: { http: { endpoint: http, path: /index.html }, intervalSeconds: 2, timeoutSeconds: 1, unhealthyThreshold: 3 }
            """);
        var output = Path.Combine(work, $"{driver}.hpkg");
        var diagnostics = new DiagnosticBag();
        return PackageBuilder.Pack(source, output, diagnostics) is null ? throw new InvalidOperationException(string.Join("; ", diagnostics.Items)) : output;
    }

    private static string Join(List<double> times) => string.Join(' ', times.Select(x => x.ToString("0.000", CultureInfo.InvariantCulture)));
}
