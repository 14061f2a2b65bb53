using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Heddle.Benchmarks.Deploy;
using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Benchmarks.Scale;

/// <summary>
/// `bench/run.sh scale`: a real controller (SQLite; with --store etcd three on a 3-member etcd) and one `heddle hollow` process of N nodes; through the real API,
/// services of 100 instances (1, 2 and 4 cores in turn, four tenants) until the instance count is reached, all Ready;
/// 1% of the nodes dropped (heal time beyond the node timeout); every service scaled by 10%; everything deleted.
/// Prints a table (or with -o json one object) beside Kubernetes' and Nomad's published figures.
/// With a remote `heddle dns` and `heddle lb` following the controller's changes, their CPU per change (<see cref="DataPlanes"/>).
/// Options: --nodes N (10000) --instances N (100000) --store sqlite|etcd --cores N (32) --node-timeout 10s --clients N (8 calls in flight)
/// --no-data-planes (the controller's own DNS server and no balancer, as before 12-06) --heddle PATH -o json --logs DIR (the processes' logs kept there)
/// </summary>
internal static class ScaleHarness
{
    private const int PerService = 100;
    private static readonly string[] Tenants = ["t1", "t2", "t3", "t4"];

    public static int Run(string[] args)
    {
        var options = new Options(
            Nodes: int.Parse(DeployHarness.Option(args, "--nodes") ?? "10000", CultureInfo.InvariantCulture),
            Instances: int.Parse(DeployHarness.Option(args, "--instances") ?? "100000", CultureInfo.InvariantCulture),
            Store: DeployHarness.Option(args, "--store") ?? "sqlite",
            Cores: int.Parse(DeployHarness.Option(args, "--cores") ?? "32", CultureInfo.InvariantCulture),
            NodeTimeoutSeconds: int.Parse((DeployHarness.Option(args, "--node-timeout") ?? "10s").TrimEnd('s'), CultureInfo.InvariantCulture),
            Clients: int.Parse(DeployHarness.Option(args, "--clients") ?? "8", CultureInfo.InvariantCulture),
            Heddle: DeployHarness.Option(args, "--heddle") ?? "artifacts/heddle/heddle",
            Json: DeployHarness.Option(args, "-o") == "json",
            DataPlanes: !args.Contains("--no-data-planes"),
            Logs: DeployHarness.Option(args, "--logs"),
            IdleOnly: args.Contains("--idle-only"));
        if (options.Store is not ("sqlite" or "etcd"))
        {
            Console.Error.WriteLine($"scale: --store is sqlite (one controller) or etcd (three controllers on a 3-member etcd), not '{options.Store}'");
            return 2;
        }

        if (options.Nodes < 100 || options.Instances < PerService || options.Instances % PerService != 0)
        {
            Console.Error.WriteLine($"scale: --nodes must be at least 100 (1% of them are dropped) and --instances a multiple of {PerService}");
            return 2;
        }

        // Stopped with SIGTERM or Ctrl-C, the run takes its controller, hollow nodes and data planes with it: else they
        // ran on (thousands of hollow nodes, a controller) until killed by hand.
        using var terminated = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, _ => KillStarted());
        using var interrupted = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, _ => KillStarted());
        var result = RunAsync(options).GetAwaiter().GetResult();
        Print(options, result);
        return 0;
    }

    private static readonly List<Process> Started = [];
    private static string? Home;
    private static string? LogsFolder;

    /// <summary>On SIGTERM or SIGINT: every process the run started is killed, their logs copied to --logs, and the run's folder removed (the run ends without its usings).</summary>
    private static void KillStarted()
    {
        lock (Started)
        {
            foreach (var process in Started)
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit(TimeSpan.FromSeconds(10));
                }
                catch (InvalidOperationException)
                {
                    // it had exited
                }
            }
        }

        if (Home is { } logs && Directory.Exists(logs))
        {
            LogsKept.Copy(logs, LogsFolder); // --logs: what the processes said up to the signal, kept as at a run's end
        }

        // The run's own log writers may still be taking the killed processes' last lines into files there: a delete
        // that meets a file made meanwhile is tried again (once it threw, and the folder of a 2,500-node run stayed).
        for (var attempt = 1; Home is { } home && Directory.Exists(home); attempt++)
        {
            try
            {
                Directory.Delete(home, recursive: true);
            }
            catch (IOException) when (attempt < 10)
            {
                Thread.Sleep(TimeSpan.FromMilliseconds(100 * attempt));
            }
        }
    }

    /// <param name="Clients">How many deploy, scale and delete calls are in flight at once, as several users or a CI system
    /// would send them (Nomad's C1M submits its jobs concurrently); one at a time, the calls themselves were the run's length.</param>
    /// <param name="DataPlanes">A `heddle dns` and a `heddle lb` of their own follow the controller's changes (the controller
    /// runs neither), and each service has an input endpoint on a VIP: their CPU per change is measured. Off
    /// (--no-data-planes): the controller's own DNS server, no balancer and no VIPs, as the figures before 12-06 were taken.</param>
    /// <param name="Logs">A folder the logs of every process of the run (controllers, etcd, hollow nodes, data planes) are copied into when it ends.</param>
    /// <param name="IdleOnly">Only enrol the nodes and measure them idle (the 10,000-node target), with no deployment.</param>
    private sealed record Options(int Nodes, int Instances, string Store, int Cores, int NodeTimeoutSeconds, string Heddle, bool Json, int Clients = 8, bool DataPlanes = true,
        string? Logs = null, bool IdleOnly = false);

    /// <summary>Copies the run's *.log files into a folder when disposed (nothing without one).</summary>
    private sealed class LogsKept(TempDirectory home, string? folder) : IDisposable
    {
        public void Dispose() => Copy(home.Path, folder);

        /// <summary>The *.log files of the run's folder <paramref name="from"/> into <paramref name="folder"/> (nothing without one).</summary>
        public static void Copy(string from, string? folder)
        {
            if (folder is null)
            {
                return;
            }

            Directory.CreateDirectory(folder);
            foreach (var log in Directory.EnumerateFiles(from, "*.log"))
            {
                File.Copy(log, Path.Combine(folder, Path.GetFileName(log)), overwrite: true);
            }

            Console.Error.WriteLine($"the run's logs are in {folder}");
        }
    }

    private static async Task<Dictionary<string, object>> RunAsync(Options o)
    {
        using var home = new TempDirectory("heddle-scale-");
        (Home, LogsFolder) = (home.Path, o.Logs);
        // Declared before the processes, so disposed after they stopped: their logs are whole when copied.
        using var keep = new LogsKept(home, o.Logs);
        var figures = new Dictionary<string, object> { ["nodes"] = o.Nodes, ["instances"] = o.Instances, ["store"] = o.Store };
        Process? hollow = null;
        DataPlanes? planes = null;
        await using var control = await ControlPlane.StartAsync(o.Heddle, home, o.Store, o.NodeTimeoutSeconds, o.DataPlanes);
        try
        {
            var agentUrl = string.Join(',', control.AgentUrls);
            var ca = Heddle.Contracts.Trust.ClusterTrust.Load(File.ReadAllText(Path.Combine(control.State, "ca.crt")));
            var token = File.ReadAllText(Path.Combine(control.State, "api-token")).Trim();
            using var api = new HeddleApiClient(control.ApiUrls, token, ca);
            await using var cpu = new ProcessSampler([.. control.ControllerPids]);
            await using var etcdCpu = control.EtcdPids.Count == 0 ? null : new ProcessSampler([.. control.EtcdPids]);
            using var gc = new ControllerGc(control.ApiUrls, token, ca);
            var join = (await api.CreateTokenAsync(new TokenCreateRequest(Join: true))).JoinString!;
            if (o.DataPlanes)
            {
                planes = await DataPlanes.StartAsync(o.Heddle, home, control, ca);
            }

            var clock = Stopwatch.StartNew();
            hollow = Start(o.Heddle, home.Combine("hollow.log"), join, "hollow", "--controller", agentUrl, "--nodes", $"{o.Nodes}", "--cores", $"{o.Cores}",
                "--state", home.Combine("hollow"), "--print-every", "10s", "--start-concurrency", "16");
            await Poll.UntilAsync(() => api.ListNodesAsync(), n => n.Count(x => x.Condition == "Ready") == o.Nodes, TimeSpan.FromSeconds(30 + o.Nodes / 2.0), $"{o.Nodes} nodes Ready",
                TimeSpan.FromSeconds(2));
            figures["enrol_s"] = clock.Elapsed.TotalSeconds;
            Console.Error.WriteLine($"{o.Nodes} nodes Ready in {clock.Elapsed.TotalSeconds:0.0} s; idle for 20 s");

            // The hollow process's own share of the 2 CPUs: what the simulated nodes leave to the controller.
            await using var hollowCpu = new ProcessSampler(hollow.Id);
            cpu.Reset();
            etcdCpu?.Reset();
            await Task.Delay(TimeSpan.FromSeconds(20)); // a measurement window, not a wait for something to happen
            var idle = cpu.Take();
            (figures["idle_cpu_avg"], figures["idle_cpu_peak"], figures["idle_rss_mib"]) = (idle.AvgCores, idle.PeakCores, idle.PeakRssMiB);
            var hollowIdle = hollowCpu.Take();
            (figures["hollow_idle_cpu_avg"], figures["hollow_idle_rss_mib"]) = (hollowIdle.AvgCores, hollowIdle.PeakRssMiB);
            if (etcdCpu?.Take() is { } etcdIdle)
            {
                (figures["etcd_idle_cpu_avg"], figures["etcd_idle_rss_mib"]) = (etcdIdle.AvgCores, etcdIdle.PeakRssMiB);
            }

            Console.Error.WriteLine($"idle: controller {idle.AvgCores:0.00} cores average, {idle.PeakCores:0.00} peak, {idle.PeakRssMiB:0} MiB");
            if (o.IdleOnly)
            {
                figures["store_mib"] = control.StoreMiB();
                return figures;
            }

            var latency = new LatencyProbe();
            string? probeService = null;
            using var probing = new CancellationTokenSource();
            var probe = latency.ProbeAsync(api, () => probeService, probing.Token);
            var clients = new Dictionary<string, HeddleApiClient>(StringComparer.Ordinal);
            foreach (var tenant in Tenants)
            {
                clients[tenant] = new HeddleApiClient(control.ApiUrls, (await api.CreateTokenAsync(new TokenCreateRequest(Tenant: tenant))).Token, ca);
            }

            var services = Enumerable.Range(0, o.Instances / PerService).Select(s => (Name: $"s{s}", Tenant: Tenants[s % Tenants.Length], Cores: 1 << (s % 3))).ToList();
            cpu.Reset();
            hollowCpu.Reset();
            etcdCpu?.Reset();
            planes?.Reset();
            await gc.ResetAsync();
            clock.Restart();
            try
            {
                await DeployHealScaleDeleteAsync();
                planes?.Take(figures, "run");
            }
            catch (Exception e) when (e is TimeoutException or HeddleApiException)
            {
                // The figures so far are still printed, with what did not happen (a wait that ran out, or a call the
                // controller did not answer within the client's limit).
                figures["failed"] = e.Message;
                if (!figures.ContainsKey("deploy_cpu_avg"))
                {
                    var partial = cpu.Take();
                    (figures["deploy_cpu_avg"], figures["deploy_cpu_peak"], figures["deploy_rss_mib"]) = (partial.AvgCores, partial.PeakCores, partial.PeakRssMiB);
                }
            }

            await probing.CancelAsync();
            await probe;
            foreach (var kind in new[] { "status", "instances", "deploy" })
            {
                var (p50, p99, _) = latency.Percentiles(kind);
                (figures[$"{kind}_p50_ms"], figures[$"{kind}_p99_ms"]) = (p50, p99);
            }

            figures["store_mib"] = control.StoreMiB();
            foreach (var client in clients.Values)
            {
                client.Dispose();
            }

            return figures;

            async Task DeployHealScaleDeleteAsync()
            {
                var calls = new ParallelOptions { MaxDegreeOfParallelism = o.Clients };
                await Parallel.ForEachAsync(services, calls, async (service, _) =>
                {
                    // A package per service: the configuration names the service, and a package is its service's.
                    var (name, tenant, cores) = service;
                    var upload = await clients[tenant].UploadPackageAsync(TestPackages.Build(home, name, Definition(name, cores, o.DataPlanes)));
                    await latency.TimeAsync("deploy", () => clients[tenant].DeployAsync(new DeploymentRequest(upload.Sha256, Configuration(name, PerService))));
                    Interlocked.CompareExchange(ref probeService, name, null);
                });

                figures["deploy_calls_s"] = clock.Elapsed.TotalSeconds;
                await AllReadyAsync(api, o.Instances, _ => true, TimeSpan.FromSeconds(120 + o.Instances / 20.0));
                figures["ready_s"] = clock.Elapsed.TotalSeconds;
                figures["instances_per_s"] = o.Instances / clock.Elapsed.TotalSeconds;
                var deploy = cpu.Take();
                (figures["deploy_cpu_avg"], figures["deploy_cpu_peak"], figures["deploy_rss_mib"]) = (deploy.AvgCores, deploy.PeakCores, deploy.PeakRssMiB);
                var hollowDeploy = hollowCpu.Take();
                (figures["hollow_deploy_cpu_avg"], figures["hollow_deploy_rss_mib"]) = (hollowDeploy.AvgCores, hollowDeploy.PeakRssMiB);
                if (etcdCpu?.Take() is { } etcdDeploy)
                {
                    (figures["etcd_deploy_cpu_avg"], figures["etcd_deploy_rss_mib"]) = (etcdDeploy.AvgCores, etcdDeploy.PeakRssMiB);
                }

                planes?.Take(figures, "deploy");
                await gc.TakeAsync(figures, "deploy");
                Console.Error.WriteLine($"{o.Instances} instances Ready in {clock.Elapsed.TotalSeconds:0.0} s; dropping 1% of the nodes");

                var lost = Enumerable.Range(1, o.Nodes / 100).Select(i => $"h{i}").ToHashSet(StringComparer.Ordinal);
                var moving = (await api.ListInstancesAsync()).Where(i => lost.Contains(i.Node)).Select(i => i.Id).ToHashSet(StringComparer.Ordinal);
                var mark = await HealTimeline.MarkAsync(api);
                using var following = new CancellationTokenSource(TimeSpan.FromSeconds(120 + o.Instances / 20.0));
                var followed = HealTimeline.FollowUntilMovedAsync(api, mark, moving, lost, clock, following.Token);
                var dropped = DateTimeOffset.UtcNow;
                clock.Restart();
                await hollow.StandardInput.WriteLineAsync($"drop {lost.Count}");
                await hollow.StandardInput.FlushAsync();
                // Seen as a user following `heddle events -f` sees it; then confirmed by the listing: every instance Ready, none on a lost node.
                figures["heal_beyond_timeout_s"] = (await followed).TotalSeconds - o.NodeTimeoutSeconds;
                await following.CancelAsync();
                await AllReadyAsync(api, o.Instances, i => !lost.Contains(i.Node), TimeSpan.FromSeconds(120 + o.Instances / 20.0));
                figures["heal_listed_s"] = clock.Elapsed.TotalSeconds;
                await HealTimeline.TakeAsync(api, mark, dropped, figures, o.Logs);

                var scaled = PerService + PerService / 10;
                clock.Restart();
                await Parallel.ForEachAsync(services, calls, async (service, _) => await clients[service.Tenant].ScaleAsync(service.Name, "job", scaled));

                await AllReadyAsync(api, services.Count * scaled, i => !lost.Contains(i.Node), TimeSpan.FromSeconds(120 + o.Instances / 20.0));
                figures["scale_s"] = clock.Elapsed.TotalSeconds;

                clock.Restart();
                await Parallel.ForEachAsync(services, calls, async (service, _) => await clients[service.Tenant].DeleteServiceAsync(service.Name));

                await Poll.UntilAsync(async () => (await api.ListInstancesAsync()).Count + (await api.ListServicesAsync()).Count, n => n == 0,
                    TimeSpan.FromSeconds(120 + o.Instances / 20.0), "everything deleted", TimeSpan.FromSeconds(2));
                figures["delete_s"] = clock.Elapsed.TotalSeconds;
                await gc.TakeAsync(figures, "run");
            }
        }
        finally
        {
            if (planes is not null)
            {
                await planes.DisposeAsync();
            }

            await StopAsync(hollow);
        }
    }

    private static string Definition(string name, int cores, bool input) => $$"""
        name: {{name}}
        roles:
          job:
            entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
            size: { cores: {{cores}}, memoryMiB: 64 }
            endpoints:
              peer: { kind: internal, protocol: tcp }{{(input ? "\n      web: { kind: input, protocol: tcp, port: 8080 }" : string.Empty)}}
        """;

    private static string Configuration(string name, int instances) => $"service: {name}\nroles:\n  job: {{ instances: {instances} }}\n";

    /// <summary>Polls the instance list until exactly <paramref name="count"/> exist, all Ready and all meeting <paramref name="where"/>.</summary>
    private static Task AllReadyAsync(HeddleApiClient api, int count, Func<InstanceStatus, bool> where, TimeSpan deadline) =>
        Poll.UntilAsync(async () =>
        {
            var all = await api.ListInstancesAsync();
            return (All: all.Count, Ready: all.Count(i => i.State == InstanceStates.Ready && where(i)));
        }, s => s.All == count && s.Ready == count, deadline, $"{count} instances Ready", TimeSpan.FromSeconds(2));

    internal static Process Start(string heddle, string log, string? join, params string[] args)
    {
        var start = new ProcessStartInfo(heddle) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        if (join is not null)
        {
            start.Environment["HEDDLE_JOIN"] = join;
        }

        var process = Process.Start(start)!;
        lock (Started)
        {
            Started.Add(process);
        }

        var output = new StreamWriter(log) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.WriteLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.WriteLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    internal static async Task StopAsync(Process? process)
    {
        if (process is null || process.HasExited)
        {
            return;
        }

        Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
        }
    }

    private static void Print(Options o, Dictionary<string, object> f)
    {
        if (o.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(f));
            return;
        }

        string N(string key, string format = "0.00") => f.TryGetValue(key, out var v) && v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : $"{f.GetValueOrDefault(key)}";
        Console.WriteLine($"scale benchmark: {(o.Store == "etcd" ? "etcd, three controllers on a 3-member etcd (controller figures: the three summed)" : "sqlite, one controller")}, "
            + $"one `heddle hollow` process, {Environment.ProcessorCount} CPUs (shared by all)");
        Console.WriteLine($"{"nodes",7} {"instances",9} {"ready s",8} {"inst/s",7} {"heal-timeout s",14} {"idle cores avg/peak",19} {"idle RSS MiB",12} {"deploy cores avg/peak",21} {"deploy RSS MiB",14} {"status p50/p99 ms",17} {"instances p50/p99 ms",20} {"deploy p50/p99 ms",17} {"scale s",7} {"delete s",8} {"store MiB",9}");
        Console.WriteLine($"{o.Nodes,7} {o.Instances,9} {N("ready_s", "0.0"),8} {N("instances_per_s", "0.0"),7} {N("heal_beyond_timeout_s", "0.0"),14} {N("idle_cpu_avg") + "/" + N("idle_cpu_peak"),19} {N("idle_rss_mib", "0"),12} "
            + $"{N("deploy_cpu_avg") + "/" + N("deploy_cpu_peak"),21} {N("deploy_rss_mib", "0"),14} {N("status_p50_ms", "0") + "/" + N("status_p99_ms", "0"),17} {N("instances_p50_ms", "0") + "/" + N("instances_p99_ms", "0"),20} "
            + $"{N("deploy_p50_ms", "0") + "/" + N("deploy_p99_ms", "0"),17} {N("scale_s", "0.0"),7} {N("delete_s", "0.0"),8} {N("store_mib", "0.0"),9}");
        if (f.ContainsKey("heal_down_first_s"))
        {
            Console.WriteLine($"heal, seconds after the drop (the controller's events): nodes Down {N("heal_down_first_s", "0.0")}-{N("heal_down_last_s", "0.0")}; "
                + $"{N("heal_moved", "0")} instances placed elsewhere {N("heal_placed_first_s", "0.0")}-{N("heal_placed_last_s", "0.0")}; the last Ready {N("heal_ready_last_s", "0.0")}; "
                + $"seen by the client following the events {o.NodeTimeoutSeconds + (f.GetValueOrDefault("heal_beyond_timeout_s") as double? ?? 0):0.0}; confirmed by a listing at {N("heal_listed_s", "0.0")}");
            Console.WriteLine($"  each moved instance, median/slowest s: placed → its first report {N("heal_goal_p50_s", "0.0")}/{N("heal_goal_max_s", "0.0")}; "
                + $"→ Starting (package fetched) {N("heal_fetch_p50_s", "0.0")}/{N("heal_fetch_max_s", "0.0")}; → Ready {N("heal_start_p50_s", "0.0")}/{N("heal_start_max_s", "0.0")}");
        }

        if (f.ContainsKey("hollow_idle_cpu_avg"))
        {
            Console.WriteLine($"the hollow nodes' process (on the same CPUs): idle {N("hollow_idle_cpu_avg")} cores, {N("hollow_idle_rss_mib", "0")} MiB"
                + (f.ContainsKey("hollow_deploy_cpu_avg") ? $"; deploying {N("hollow_deploy_cpu_avg")} cores, {N("hollow_deploy_rss_mib", "0")} MiB" : string.Empty));
        }

        if (f.ContainsKey("deploy_gc_pause_s"))
        {
            Console.WriteLine($"controller paused for garbage collection: deploying {N("deploy_gc_pause_s", "0.0")} s of {N("ready_s", "0.0")} s, {N("deploy_gc_gen2", "0")} full collections"
                + (f.ContainsKey("run_gc_pause_s") ? $"; the whole run {N("run_gc_pause_s", "0.0")} s, {N("run_gc_gen2", "0")} full collections" : string.Empty));
        }

        if (f.ContainsKey("etcd_idle_cpu_avg"))
        {
            Console.WriteLine($"etcd (3 members, summed): idle {N("etcd_idle_cpu_avg")} cores, {N("etcd_idle_rss_mib", "0")} MiB; deploying {N("etcd_deploy_cpu_avg")} cores, {N("etcd_deploy_rss_mib", "0")} MiB");
        }

        if (o.DataPlanes)
        {
            Console.WriteLine();
            Console.WriteLine($"remote data planes (a `heddle dns` and a `heddle lb` following the controller's changes): {"plane",5} {"phase",6} {"changes",7} {"CPU s",6} {"ms CPU/change",13} {"bytes/change",12} {"RSS MiB",7}");
            foreach (var plane in new[] { "dns", "lb" })
            {
                foreach (var phase in new[] { "deploy", "run" })
                {
                    Console.WriteLine($"{string.Empty,85} {plane,5} {phase,6} {N($"{plane}_{phase}_changes", "0"),7} {N($"{plane}_{phase}_cpu_s", "0.0"),6} {N($"{plane}_{phase}_ms_per_change", "0.00"),13} "
                        + $"{N($"{plane}_{phase}_bytes_per_change", "0"),12} {N($"{plane}_{phase}_rss_mib", "0"),7}");
                }
            }

            Console.WriteLine("(deploy: from the first deploy call to all Ready; run: to everything deleted, heal and scale included)");
        }

        if (f.TryGetValue("failed", out var failed))
        {
            Console.WriteLine($"NOT FINISHED: {failed}");
        }

        Console.WriteLine();
        Console.WriteLine("targets (issue 27, 2 cores, SQLite): 10,000 nodes at <= 0.5 core and 1 GiB idle; 100,000 instances Ready < 60 s; heal <= timeout + 2 s; API p99 < 100 ms");
        Console.WriteLine("Kubernetes: 5,000 nodes, 150,000 pods; pod startup p99 <= 5 s; mutating single-object API calls p99 <= 1 s (kubemark hollow nodes: 0.09 CPU, 220 MB each)");
        Console.WriteLine("Nomad C1M: 1,000,000 containers on 5,000 hosts in under 5 min (3,750/s), 5 servers; C2M: 2,000,000 on 6,100 hosts in 22 min");
    }
}
