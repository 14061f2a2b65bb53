using System.Diagnostics;
using System.Globalization;
using System.Net;
using Heddle.Contracts.Api;
using Xunit.Abstractions;

namespace Heddle.LoadBalancer.Tests;

/// <summary>
/// The regression guard of issue 28: Heddle's L4 and L7 listeners against HAProxy (nbthread 1, mode tcp and mode http)
/// in front of the same nginx, in the same run, at a small size (wrk -t1 -c16, 1 s per round, the paths in turns, the
/// median of 5 rounds). Only the ratio is asserted, never a time: a loaded machine slows both sides alike.
/// <c>bench/run.sh lb</c> is the measurement; this only catches a fall below 0.9×.
/// </summary>
[Trait("Category", "SpeedRatio")]
[Collection(nameof(SpeedRatioTests))]
[CollectionDefinition(nameof(SpeedRatioTests), DisableParallelization = true)]
public sealed class SpeedRatioTests(ITestOutputHelper output)
{
    private const double Floor = 0.9;
    private const int Rounds = 5;

    [Fact]
    public async Task L4AndL7_ServeAtLeast90PercentOfHaProxysRequestsPerSecond()
    {
        foreach (var tool in new[] { "nginx", "haproxy", "wrk" })
        {
            Assert.True(Which(tool), $"{tool} is not installed (scripts/install-deps.sh installs it)");
        }

        var work = Directory.CreateTempSubdirectory("heddle-ratio-").FullName;
        var started = new List<Process>();
        try
        {
            var backend = FreePort();
            started.Add(Launch("nginx", ["-c", Write(work, "nginx.conf", Nginx(work, backend)), "-p", work]));
            var (tcp, http) = (FreePort(), FreePort());
            started.Add(Launch("haproxy", ["-f", Write(work, "tcp.cfg", HaProxy("tcp", tcp, backend)), "-db"]));
            started.Add(Launch("haproxy", ["-f", Write(work, "http.cfg", HaProxy("http", http, backend)), "-db"]));
            await using var host = new LoadBalancerHost(new LoadBalancerOptions());
            var (heddleTcp, heddleHttp) = (FreePort(), FreePort());
            var nginx = new Backend("nginx", "127.0.0.1", backend);
            Assert.Empty(await host.ApplyAsync(new LoadBalancerConfig
            {
                Version = 1,
                Listeners = [new VipListener("ratio", "127.0.0.1", heddleTcp, "tcp", [nginx]), new VipListener("ratio", "127.0.0.1", heddleHttp, "http", [nginx])],
            }));
            foreach (var port in new[] { backend, tcp, http, heddleTcp, heddleHttp })
            {
                await Heddle.Testing.Poll.UntilAsync(() => Wrk(port, seconds: 1) > 0, TimeSpan.FromSeconds(20), $"port {port} answering");
            }

            var medians = Median([tcp, heddleTcp, http, heddleHttp]);
            var (l4, l7) = (medians[1] / medians[0], medians[3] / medians[2]);
            var figures = string.Create(CultureInfo.InvariantCulture,
                $"L4 {medians[1]:N0} vs HAProxy {medians[0]:N0} req/s ({l4:0.00}x); L7 {medians[3]:N0} vs HAProxy {medians[2]:N0} ({l7:0.00}x)");
            output.WriteLine(figures);
            Assert.True(l4 >= Floor && l7 >= Floor, $"below {Floor}x HAProxy: {figures}");
        }
        finally
        {
            foreach (var process in started)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                process.Dispose();
            }

            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Each port measured once per round, in turns; the median of the rounds per port.</summary>
    private static double[] Median(int[] ports)
    {
        var all = ports.Select(_ => new List<double>()).ToArray();
        for (var round = 0; round < Rounds; round++)
        {
            for (var i = 0; i < ports.Length; i++)
            {
                all[i].Add(Wrk(ports[i], seconds: 1));
            }
        }

        return [.. all.Select(r => r.Order().ElementAt(r.Count / 2))];
    }

    private static double Wrk(int port, int seconds)
    {
        var start = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-t1", "-c16", $"-d{seconds}s", $"http://127.0.0.1:{port}/" })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("Requests/sec:", StringComparison.Ordinal));
        var errors = output.Contains("Socket errors", StringComparison.Ordinal) || output.Contains("Non-2xx", StringComparison.Ordinal);
        return line is null || errors ? 0 : double.Parse(line["Requests/sec:".Length..].Trim(), CultureInfo.InvariantCulture);
    }

    private static string Nginx(string work, int port) => $$"""
        worker_processes 1;
        daemon off;
        pid {{work}}/nginx.pid;
        error_log stderr error;
        events { worker_connections 1024; }
        http {
            access_log off;
            client_body_temp_path {{work}};
            proxy_temp_path {{work}};
            fastcgi_temp_path {{work}};
            uwsgi_temp_path {{work}};
            scgi_temp_path {{work}};
            server {
                listen 127.0.0.1:{{port}};
                location / { return 200 "hello from nginx\n"; }
            }
        }
        """;

    private static string HaProxy(string mode, int port, int backend) => $"""
        global
            nbthread 1
            maxconn 1024
        defaults
            mode {mode}
            timeout connect 5s
            timeout client 30s
            timeout server 30s
        frontend ratio
            bind 127.0.0.1:{port}
            default_backend nginx
        backend nginx
            server s1 127.0.0.1:{backend}

        """;

    private static string Write(string work, string name, string text)
    {
        var path = Path.Combine(work, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static Process Launch(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        args.ToList().ForEach(start.ArgumentList.Add);
        var process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        return process;
    }

    private static bool Which(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Concat(["/usr/sbin", "/sbin"]).Any(d => File.Exists(Path.Combine(d, tool)));

    private static int FreePort()
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
