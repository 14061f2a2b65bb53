using System.Diagnostics;
using System.Globalization;
using Heddle.Benchmarks.Dns;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer;

namespace Heddle.Benchmarks.LoadBalancer;

/// <summary>
/// L4 load balancing: nginx (one worker) as the backend; wrk -t1 -c32 --latency against it directly, through HAProxy
/// (nbthread 1, mode tcp) and through Heddle's L4 listener (one loop thread, the default, for the ratio; two loop threads
/// for information), in one run; then the same with `Connection: close` for
/// the connection rate. Each path gets a one-second warm-up run first (the JIT and the connection pools settle; the
/// same for every path), and the paths are measured in turns for --rounds rounds, each figure being the median of its
/// rounds, so that a noisy moment on a shared machine does not fall on one path only. Options: --seconds N (default 5),
/// --rounds N (default 3), --only l4|l7, --guard R (exit code 3 when a heddle / haproxy ratio is below R), --via-up (the `heddle lb` process of a `heddle up` cluster instead of the
/// balancer in this process: <see cref="LbViaUp"/>).
/// </summary>
internal static class LbHarness
{
    public static int Run(string[] args)
    {
        var seconds = Option(args, "--seconds", 5);
        var rounds = Option(args, "--rounds", 3);
        var only = Text(args, "--only"); // l4 or l7: one half of the run
        var guard = new RatioGuard(args);
        if (args.Contains("--via-up"))
        {
            return LbViaUp.Run(args, seconds, rounds, only, guard);
        }

        var work = Directory.CreateTempSubdirectory("heddle-lb-bench-").FullName;
        try
        {
            using var nginx = Nginx(work);
            var backendPort = nginx.Port;
            using var haproxy = HaProxy(work, backendPort);
            var haproxyPort = haproxy.Port;
            using var haproxyHttp = HaProxy(work, backendPort, mode: "http");
            var haproxyHttpPort = haproxyHttp.Port;
            // Heddle's balancers in this process, on ports of BenchPorts (a listener is told its port: none is probed
            // by binding and giving it back), applied again on others when one is taken.
            var twoLoops = new LoadBalancerHost(new LoadBalancerOptions { L4Threads = 2 }, new Heddle.Contracts.Metrics.MeterScope()); // counting as in production
            var heddleTwoLoopsPort = Apply(twoLoops, 1, ports => new LoadBalancerConfig
            {
                Version = 1,
                Listeners = [new VipListener("bench", "127.0.0.1", ports[0], "tcp", [new Backend("nginx", "127.0.0.1", backendPort)])],
            })[0];
            var balancer = new LoadBalancerHost(new LoadBalancerOptions(), new Heddle.Contracts.Metrics.MeterScope());
            var heddlePorts = Apply(balancer, 2, ports => new LoadBalancerConfig
            {
                Version = 1,
                Listeners =
                [
                    new VipListener("bench", "127.0.0.1", ports[0], "tcp", [new Backend("nginx", "127.0.0.1", backendPort)]),
                    new VipListener("bench", "127.0.0.1", ports[1], "http", [new Backend("nginx", "127.0.0.1", backendPort)]),
                ],
            });
            var (heddlePort, heddleHttpPort) = (heddlePorts[0], heddlePorts[1]);

            Console.WriteLine($"load balancer benchmark: nginx (1 worker) behind each; wrk -t1 -c32 -d{seconds}s --latency after a 1 s warm-up; median of {rounds} rounds taken in turns; {Environment.ProcessorCount} CPUs shared by wrk, nginx and the proxy");
            foreach (var (title, close) in only == "l7" ? [] : new[] { ("keep-alive requests", false), ("new connection per request (Connection: close)", true) })
            {
                Console.WriteLine();
                Console.WriteLine(title);
                Console.WriteLine($"{"path",-26} {"requests/s",11} {"p50 ms",8} {"p99 ms",8} {"errors",8} {"server CPU µs/req",18}");
                // Under --guard only the two paths of the ratio: nginx direct and two loop threads are for information.
                var results = Rounds(rounds, guard.Active
                    ? [("127.0.0.1", haproxyPort, haproxy.ProcessId), ("127.0.0.1", heddlePort, Environment.ProcessId)]
                    : [("127.0.0.1", haproxyPort, haproxy.ProcessId), ("127.0.0.1", heddlePort, Environment.ProcessId), ("127.0.0.1", backendPort, nginx.ProcessId), ("127.0.0.1", heddleTwoLoopsPort, Environment.ProcessId)], seconds, close);
                var (viaHaproxy, viaHeddle) = (results[0], results[1]);
                if (!guard.Active)
                {
                    Print("nginx direct", results[2]);
                }

                Print("haproxy 1 thread, mode tcp", viaHaproxy);
                Print("heddle L4", viaHeddle);
                if (!guard.Active)
                {
                    Print("heddle L4, 2 loop threads", results[3]);
                }
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"heddle / haproxy: {viaHeddle.Rps / viaHaproxy.Rps:0.00}x requests/s, p99 {viaHeddle.P99:0.00} vs {viaHaproxy.P99:0.00} ms (target >= 1.0x, p99 no worse)"));
                guard.Add(close ? "L4 close" : "L4 keep-alive", viaHeddle.Rps / viaHaproxy.Rps);
            }

            foreach (var (title, close) in only == "l4" ? [] : new[] { ("L7, keep-alive requests", false), ("L7, new connection per request (Connection: close)", true) })
            {
            Console.WriteLine();
            Console.WriteLine(title);
            Console.WriteLine($"{"path",-26} {"requests/s",11} {"p50 ms",8} {"p99 ms",8} {"errors",8} {"server CPU µs/req",18}");
            var l7 = Rounds(rounds, [("127.0.0.1", haproxyHttpPort, haproxyHttp.ProcessId), ("127.0.0.1", heddleHttpPort, Environment.ProcessId)], seconds, close);
            var (l7Haproxy, l7Heddle) = (l7[0], l7[1]);
            Print("haproxy 1 thread, mode http", l7Haproxy);
            Print("heddle L7", l7Heddle);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"heddle / haproxy: {l7Heddle.Rps / l7Haproxy.Rps:0.00}x requests/s, p99 {l7Heddle.P99:0.00} vs {l7Haproxy.P99:0.00} ms (target >= 1.0x, p99 no worse)"));
            guard.Add(close ? "L7 close" : "L7 keep-alive", l7Heddle.Rps / l7Haproxy.Rps);
            }

            balancer.DisposeAsync().AsTask().GetAwaiter().GetResult();
            twoLoops.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return guard.Verdict();
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>
    /// Applies a configuration whose listeners need <paramref name="count"/> ports of their own on 127.0.0.1 (as
    /// tests/Heddle.LoadBalancer.Tests/HostPorts.cs does): again on other ports when one is in use, or shared with
    /// another process's socket through SO_REUSEPORT (which two loop threads set). The ports the listeners hold.
    /// </summary>
    private static int[] Apply(LoadBalancerHost host, int count, Func<int[], LoadBalancerConfig> config) => BenchPorts.Start(count, ports =>
    {
        var problems = host.ApplyAsync(config(ports)).GetAwaiter().GetResult();
        if (problems.Count > 0)
        {
            var text = string.Join("; ", problems.Select(p => $"{p.Vip}:{p.Port} {p.Reason}"));
            throw problems.All(p => p.Kind == ListenerProblemKinds.InUse) ? new PortClashException(text) : new InvalidOperationException(text);
        }

        foreach (var port in ports)
        {
            if (BenchPorts.Stranger(Environment.ProcessId, port, udp: false) is { } stranger)
            {
                throw new PortClashException($"heddle's listener shares port {port}: {stranger}"); // the next configuration drops this listener
            }
        }

        return ports;
    });

    internal sealed record Result(double Rps, double P50, double P99, long Errors, double CpuMicroseconds = 0, string ErrorLines = "");

    internal static string? Text(string[] args, string name)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
    }

    internal static int Option(string[] args, string name, int fallback)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>Warms each port up once, then measures them in turns; each figure is the median over the rounds.</summary>
    internal static Result[] Rounds(int rounds, (string Host, int Port, int Pid)[] paths, int seconds, bool close)
    {
        foreach (var (host, port, _) in paths)
        {
            Wrk(host, port, 1, close);
        }

        var all = paths.Select(_ => new List<Result>()).ToArray();
        for (var round = 0; round < rounds; round++)
        {
            for (var i = 0; i < paths.Length; i++)
            {
                var cpu = CpuTicks(paths[i].Pid);
                var result = Wrk(paths[i].Host, paths[i].Port, seconds, close);
                var used = (CpuTicks(paths[i].Pid) - cpu) * 1e6 / 100; // clock ticks are 1/100 s
                all[i].Add(result with { CpuMicroseconds = used / (result.Rps * seconds) });
            }
        }

        return [.. all.Select(r => new Result(Statistics.Median(r.Select(x => x.Rps)), Statistics.Median(r.Select(x => x.P50)), Statistics.Median(r.Select(x => x.P99)), r.Sum(x => x.Errors), Statistics.Median(r.Select(x => x.CpuMicroseconds)),
            string.Join(" | ", r.Where(x => x.Errors > 0).Select(x => x.ErrorLines))))];
    }

    /// <summary>User + system CPU so far of a process and its children (nginx's worker), in clock ticks (/proc/PID/stat).</summary>
    private static long CpuTicks(int pid)
    {
        long total = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var candidate))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // fields[1] is the parent, [11] and [12] utime and stime
                if (candidate == pid || fields[1] == pid.ToString(CultureInfo.InvariantCulture))
                {
                    total += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                }
            }
            catch (IOException)
            {
                // the process ended meanwhile
            }
        }

        return total;
    }

    internal static void Print(string name, Result r)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-26} {r.Rps,11:N0} {r.P50,8:0.00} {r.P99,8:0.00} {r.Errors,8} {r.CpuMicroseconds,18:0.0}"));
        if (r.Errors > 0)
        {
            Console.WriteLine($"  wrk said: {r.ErrorLines}"); // which kind (timeouts, resets, non-2xx) tells where to look
        }
    }

    private static Result Wrk(string host, int port, int seconds, bool close)
    {
        var args = new List<string> { "-t1", "-c32", $"-d{seconds}s", "--latency" };
        if (close)
        {
            args.AddRange(["-H", "Connection: close"]);
        }

        args.Add($"http://{host}:{port}/");
        var start = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        args.ForEach(start.ArgumentList.Add);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        double rps = 0, p50 = 0, p99 = 0;
        long errors = 0;
        var errorLines = new List<string>();
        foreach (var raw in output.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("Requests/sec:", StringComparison.Ordinal))
            {
                rps = double.Parse(line["Requests/sec:".Length..].Trim(), CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("50%", StringComparison.Ordinal))
            {
                p50 = Milliseconds(line[3..].Trim());
            }
            else if (line.StartsWith("99%", StringComparison.Ordinal))
            {
                p99 = Milliseconds(line[3..].Trim());
            }
            else if (line.StartsWith("Socket errors:", StringComparison.Ordinal) || line.StartsWith("Non-2xx", StringComparison.Ordinal))
            {
                errors += line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => w.TrimEnd(',')).Where(w => long.TryParse(w, out _)).Sum(long.Parse);
                errorLines.Add(line);
            }
        }

        return new Result(rps, p50, p99, errors, ErrorLines: string.Join("; ", errorLines));
    }

    private static double Milliseconds(string text)
    {
        var unit = text.EndsWith("us", StringComparison.Ordinal) ? 0.001 : text.EndsWith("ms", StringComparison.Ordinal) ? 1 : 1000;
        var number = text.TrimEnd('u', 'm', 's');
        return double.Parse(number, CultureInfo.InvariantCulture) * unit;
    }

    private static DnsHarness.ReferenceServer Nginx(string work) => DnsHarness.ReferenceServer.OnReservedPort(port => Nginx(work, port));

    private static DnsHarness.ReferenceServer Nginx(string work, int port)
    {
        var config = Path.Combine(work, "nginx.conf");
        File.WriteAllText(config, $$"""
            worker_processes 1;
            daemon off;
            pid {{Path.Combine(work, "nginx.pid")}};
            error_log stderr error;
            events { worker_connections 4096; }
            http {
                access_log off;
                server {
                    listen 127.0.0.1:{{port}} reuseport;
                    location / { return 200 "hello from nginx\n"; }
                }
            }
            """);
        return DnsHarness.ReferenceServer.LaunchTcp("nginx", ["-c", config, "-p", work], port);
    }

    /// <summary>HAProxy (one thread) in front of <paramref name="backend"/>, on a port of its own.</summary>
    internal static DnsHarness.ReferenceServer HaProxy(string work, int backend, string mode = "tcp", string backendHost = "127.0.0.1") =>
        DnsHarness.ReferenceServer.OnReservedPort(port => HaProxy(work, port, backend, mode, backendHost));

    private static DnsHarness.ReferenceServer HaProxy(string work, int port, int backend, string mode, string backendHost)
    {
        var config = Path.Combine(work, $"haproxy-{mode}.cfg");
        File.WriteAllText(config, $"""
            global
                nbthread 1
                maxconn 4096
            defaults
                mode {mode}
                timeout connect 5s
                timeout client 30s
                timeout server 30s
            frontend bench
                bind 127.0.0.1:{port}
                default_backend nginx
            backend nginx
                server s1 {backendHost}:{backend}
            """ + "\n"); // haproxy wants the last line ended
        return DnsHarness.ReferenceServer.LaunchTcp("haproxy", ["-f", config, "-db"], port);
    }
}
