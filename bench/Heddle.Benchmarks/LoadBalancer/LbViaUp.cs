using System.Diagnostics;
using System.Globalization;
using Heddle.Benchmarks.Deploy;
using Heddle.Contracts.Api;

namespace Heddle.Benchmarks.LoadBalancer;

/// <summary>
/// `bench/run.sh lb --via-up`: the balancer as `heddle up` runs it. A 3-node `heddle up` cluster (artifacts/heddle/heddle,
/// which run.sh builds first) runs one instance of a service whose role is nginx (one worker, the same configuration as
/// the harness's backend, pinned to its core by the process driver as any instance is), with an http and a tcp input
/// endpoint; wrk goes to the service's VIP (the `heddle lb` process `up` started, with its flags and environment) and
/// to HAProxy (nbthread 1) in front of the same instance, in turns, and the same table as the in-process harness is
/// printed, CPU per request being the `heddle lb` process's.
/// </summary>
internal static class LbViaUp
{
    private const string ServiceYaml = """
        name: lbbench
        roles:
          web:
            driver: process
            entryPoint: { command: /bin/sh, args: [start.sh] }
            size: { cores: 1, memoryMiB: 256 }
            endpoints:
              http: { kind: input, protocol: http, port: 8080 }
              tcp: { kind: input, protocol: tcp, port: 8081 }
        """;

    // nginx as in LbHarness.Nginx, listening on both of the instance's ports; its files in a folder of its own.
    private const string StartSh = """
        #!/bin/sh
        run=$(mktemp -d)
        cat > "$run/nginx.conf" <<EOF
        worker_processes 1;
        daemon off;
        pid $run/nginx.pid;
        error_log stderr error;
        events { worker_connections 4096; }
        http {
            access_log off;
            client_body_temp_path $run/body;
            proxy_temp_path $run/proxy;
            fastcgi_temp_path $run/fastcgi;
            uwsgi_temp_path $run/uwsgi;
            scgi_temp_path $run/scgi;
            server {
                listen $HEDDLE_ADDRESS:$HEDDLE_PORT_HTTP reuseport;
                listen $HEDDLE_ADDRESS:$HEDDLE_PORT_TCP reuseport;
                location / { return 200 "hello from nginx\n"; }
            }
        }
        EOF
        exec nginx -p "$run" -c "$run/nginx.conf"
        """;

    public static int Run(string[] args, int seconds, int rounds, string? only, RatioGuard guard) => RunAsync(args, seconds, rounds, only, guard).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string[] args, int seconds, int rounds, string? only, RatioGuard guard)
    {
        var heddle = Path.GetFullPath(LbHarness.Text(args, "--heddle") ?? "artifacts/heddle/heddle");
        var work = Directory.CreateTempSubdirectory("heddle-lb-up-").FullName;
        try
        {
            var folder = Path.Combine(work, "lbbench");
            Directory.CreateDirectory(Path.Combine(folder, "roles", "web"));
            await File.WriteAllTextAsync(Path.Combine(folder, "service.yaml"), ServiceYaml + "\n");
            await File.WriteAllTextAsync(Path.Combine(folder, "roles", "web", "start.sh"), StartSh + "\n");
            var package = Path.Combine(work, "lbbench.hpkg");
            ProgramRun.Run(heddle, ["pack", folder, "--output", package]);

            await using var cluster = await BenchCluster.StartAsync(heddle, coresPerNode: 1);
            var upload = await cluster.Api.UploadPackageAsync(package);
            await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, "service: lbbench\nroles:\n  web: { instances: 1 }\n"));
            var (vip, instance) = await ServedAsync(cluster.Api);
            var lbPid = cluster.Processes().Pids["lb"];
            var backend = instance.NodeAddress!;
            var (httpPort, tcpPort) = (instance.Ports["http"], instance.Ports["tcp"]);
            using var haproxy = LbHarness.HaProxy(work, tcpPort, backendHost: backend);
            using var haproxyHttp = LbHarness.HaProxy(work, httpPort, mode: "http", backendHost: backend);
            Console.WriteLine($"load balancer benchmark through `heddle up` ({heddle}): the `heddle lb` process (pid {lbPid}) at VIP {vip}, one nginx instance at {backend} (pinned to its core); "
                + $"wrk -t1 -c32 -d{seconds}s --latency after a 1 s warm-up; median of {rounds} rounds taken in turns; {Environment.ProcessorCount} CPUs shared by the cluster, wrk, nginx and the proxies");
            Console.WriteLine(Describe(lbPid));
            foreach (var (title, close) in only == "l7" ? [] : new[] { ("keep-alive requests", false), ("new connection per request (Connection: close)", true) })
            {
                Console.WriteLine();
                Console.WriteLine(title);
                Header();
                var results = LbHarness.Rounds(rounds, [(backend, tcpPort, instance.Pid), ("127.0.0.1", haproxy.Port, haproxy.ProcessId), (vip, 8081, lbPid)], seconds, close);
                LbHarness.Print("nginx direct", results[0]);
                LbHarness.Print("haproxy 1 thread, mode tcp", results[1]);
                LbHarness.Print("heddle L4 (heddle up)", results[2]);
                Ratio(results[2], results[1]);
                guard.Add(close ? "L4 close" : "L4 keep-alive", results[2].Rps / results[1].Rps);
            }

            foreach (var (title, close) in only == "l4" ? [] : new[] { ("L7, keep-alive requests", false), ("L7, new connection per request (Connection: close)", true) })
            {
                Console.WriteLine();
                Console.WriteLine(title);
                Header();
                var results = LbHarness.Rounds(rounds, [("127.0.0.1", haproxyHttp.Port, haproxyHttp.ProcessId), (vip, 8080, lbPid)], seconds, close);
                LbHarness.Print("haproxy 1 thread, mode http", results[0]);
                LbHarness.Print("heddle L7 (heddle up)", results[1]);
                Ratio(results[1], results[0]);
                guard.Add(close ? "L7 close" : "L7 keep-alive", results[1].Rps / results[0].Rps);
            }

            return guard.Verdict();
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static void Header() =>
        Console.WriteLine($"{"path",-26} {"requests/s",11} {"p50 ms",8} {"p99 ms",8} {"errors",8} {"server CPU µs/req",18}");

    private static void Ratio(LbHarness.Result heddle, LbHarness.Result haproxy) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"heddle / haproxy: {heddle.Rps / haproxy.Rps:0.00}x requests/s, p99 {heddle.P99:0.00} vs {haproxy.P99:0.00} ms (target >= 1.0x, p99 no worse)"));

    /// <summary>How the `heddle lb` process runs: its threads and the runtime settings in its environment, for comparing with the in-process harness.</summary>
    private static string Describe(int pid)
    {
        var threads = Directory.GetDirectories($"/proc/{pid}/task").Length;
        var runtime = File.ReadAllText($"/proc/{pid}/environ").Split('\0').Where(v => v.StartsWith("DOTNET_", StringComparison.Ordinal)).ToList();
        var affinity = File.ReadAllLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("Cpus_allowed_list", StringComparison.Ordinal))?.Split(':')[1].Trim();
        return $"heddle lb: {threads} threads, CPUs {affinity}, runtime environment: {(runtime.Count == 0 ? "none" : string.Join(' ', runtime))}";
    }

    /// <summary>Waits until the instance is Ready and the VIP answers on both ports.</summary>
    private static async Task<(string Vip, InstanceStatus Instance)> ServedAsync(HeddleApiClient api)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(3))
        {
            var status = await api.GetServiceAsync("lbbench");
            if (status.ReadyInstances == 1 && status.Vip is { } vip)
            {
                try
                {
                    await http.GetStringAsync($"http://{vip}:8080/");
                    await http.GetStringAsync($"http://{vip}:8081/");
                    return (vip, status.Instances.Single(i => i.State == "Ready"));
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    // the balancer has not opened the listeners yet
                }
            }

            await Task.Delay(200);
        }

        throw new InvalidOperationException("the lbbench instance was not served through its VIP within 3 minutes");
    }
}
