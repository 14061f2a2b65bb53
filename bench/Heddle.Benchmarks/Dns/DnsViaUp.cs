using System.Diagnostics;
using System.Globalization;
using System.Net;
using Heddle.Benchmarks.Deploy;
using Heddle.Contracts.Api;

namespace Heddle.Benchmarks.Dns;

/// <summary>
/// `bench/run.sh dns --via-up`: the DNS server as `heddle up` runs it. A 3-node `heddle up` cluster
/// (artifacts/heddle/heddle, which run.sh builds first) runs one service of three roles, four instances each (processes
/// that only answer on their ports: busybox httpd), with input and internal endpoints; the names the cluster's `heddle dns` process serves are read
/// from the controller (<c>GET /v1/dns/records</c>) and given to Knot (one UDP worker) as a zone file, and dnsperf asks
/// both the same query mix as the in-process harness, in turns, with one client and with four. Figures are medians of
/// the rounds. Options: --seconds N (default 5) --rounds N (default 5) --clients 1,4 --outstanding N (default 100).
/// </summary>
internal static class DnsViaUp
{
    private const string ServiceYaml = """
        name: dnsbench
        roles:
          web:
            driver: process
            entryPoint: { command: /bin/sh, args: [start.sh] }
            size: { cores: 1, memoryMiB: 64 }
            endpoints:
              http: { kind: input, protocol: http, port: 8080 }
              peer: { kind: internal, protocol: tcp }
          api:
            driver: process
            entryPoint: { command: /bin/sh, args: [start.sh] }
            size: { cores: 1, memoryMiB: 64 }
            endpoints:
              grpc: { kind: internal, protocol: tcp }
          worker:
            driver: process
            entryPoint: { command: /bin/sh, args: [start.sh] }
            size: { cores: 1, memoryMiB: 64 }
            endpoints:
              jobs: { kind: internal, protocol: tcp }
        """;

    // An instance is Ready once its endpoints accept connections: busybox httpd on each port the agent gave it.
    private static string StartSh(params string[] endpoints) =>
        "#!/bin/sh\n" + string.Concat(endpoints.Select(e => $"/usr/bin/busybox httpd -f -p \"$HEDDLE_ADDRESS:$HEDDLE_PORT_{e.ToUpperInvariant()}\" -h \"$PWD\" &\n")) + "wait\n";

    private const string Configuration = "service: dnsbench\nroles:\n  web: { instances: 4 }\n  api: { instances: 4 }\n  worker: { instances: 4 }\n";

    public static int Run(string[] args) => RunAsync(args).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string[] args)
    {
        var seconds = DnsHarness.Int(args, "--seconds", 5);
        var rounds = DnsHarness.Int(args, "--rounds", 5);
        var outstanding = DnsHarness.Int(args, "--outstanding", 100);
        var clientCounts = (LoadBalancer.LbHarness.Text(args, "--clients") ?? "1,4").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray();
        var heddle = Path.GetFullPath(LoadBalancer.LbHarness.Text(args, "--heddle") ?? "artifacts/heddle/heddle");
        var guard = new RatioGuard(args);
        using var work = new DnsHarness.TemporaryFolder();
        var folder = Path.Combine(work.Path, "dnsbench");
        Directory.CreateDirectory(Path.Combine(folder, "roles"));
        foreach (var (role, endpoints) in new[] { ("web", new[] { "http", "peer" }), ("api", ["grpc"]), ("worker", ["jobs"]) })
        {
            Directory.CreateDirectory(Path.Combine(folder, "roles", role));
            await File.WriteAllTextAsync(Path.Combine(folder, "roles", role, "start.sh"), StartSh(endpoints));
        }

        await File.WriteAllTextAsync(Path.Combine(folder, "service.yaml"), ServiceYaml + "\n");
        var package = Path.Combine(work.Path, "dnsbench.hpkg");
        ProgramRun.Run(heddle, ["pack", folder, "--output", package]);

        await using var cluster = await BenchCluster.StartAsync(heddle, coresPerNode: 4);
        var upload = await cluster.Api.UploadPackageAsync(package);
        await cluster.Api.DeployAsync(new DeploymentRequest(upload.Sha256, Configuration));
        var records = await ServedAsync(cluster.Api);
        var dns = IPEndPoint.Parse((await cluster.Api.InfoAsync()).DnsAddress ?? throw new InvalidOperationException("the cluster names no DNS server"));
        var dnsPid = cluster.Processes().Pids["dns"];
        var queries = Path.Combine(work.Path, "queries.txt");
        await File.WriteAllLinesAsync(queries, DnsHarness.Queries(records));
        using var knot = Knot.Start(work.Path, records);

        Console.WriteLine($"dns benchmark through `heddle up` ({heddle}): the `heddle dns` process (pid {dnsPid}) at {dns}, {DnsHarness.Names(records)} names of a deployed service, read from the controller and served by Knot (1 UDP worker) as a zone file");
        Console.WriteLine($"dnsperf -q {outstanding} -l {seconds}, after a 1 s warm-up of each; median of {rounds} rounds taken in turns; the same query mix as `bench/run.sh dns`; {Environment.ProcessorCount} CPUs shared by the cluster, dnsperf and Knot");
        foreach (var clients in clientCounts)
        {
            DnsHarness.Measure(dns.Port, queries, 1, clients, outstanding, dns.Address.ToString());
            DnsHarness.Measure(knot.Port, queries, 1, clients, outstanding);
            var heddleRounds = new List<DnsHarness.Figures>();
            var knotRounds = new List<DnsHarness.Figures>();
            var heddleCpu = new List<double>();
            var knotCpu = new List<double>();
            for (var round = 0; round < rounds; round++)
            {
                Round(dnsPid, () => DnsHarness.Measure(dns.Port, queries, seconds, clients, outstanding, dns.Address.ToString()), heddleRounds, heddleCpu);
                Round(knot.ProcessId, () => DnsHarness.Measure(knot.Port, queries, seconds, clients, outstanding), knotRounds, knotCpu);
            }

            var (h, k) = (DnsHarness.Figures.Median(heddleRounds), DnsHarness.Figures.Median(knotRounds));
            var (hCpu, kCpu) = (Statistics.Median(heddleCpu), Statistics.Median(knotCpu));
            Console.WriteLine();
            Console.WriteLine($"dnsperf -c {clients}");
            Console.WriteLine($"{"server",-32} {"queries/s",10} {"avg ms",8} {"p99 ms",8} {"lost",8} {"cpu us/q",9}   rounds (queries/s)");
            Print("heddle dns (heddle up)", h, hCpu, heddleRounds);
            Print("knot 3 (1 UDP worker)", k, kCpu, knotRounds);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"heddle / knot: {h.Qps / k.Qps:0.00}x queries/s, p99 {h.P99Ms:0.000} vs {k.P99Ms:0.000} ms (target >= 1.1x, p99 no worse); CPU per query {hCpu / kCpu:0.00}x knot's"));
            guard.Add($"DNS {clients} client(s)", h.Qps / k.Qps);
        }

        return guard.Verdict();
    }

    /// <summary>One measured round: its figures, and the server's CPU time per answered query in microseconds.</summary>
    private static void Round(int pid, Func<DnsHarness.Figures> measure, List<DnsHarness.Figures> figures, List<double> cpuPerQuery)
    {
        var (f, cpu) = ProcessCpu.During(pid, measure);
        figures.Add(f);
        cpuPerQuery.Add(f.Answered == 0 ? double.NaN : cpu.TotalMicroseconds / f.Answered);
    }

    private static void Print(string name, DnsHarness.Figures f, double cpuPerQuery, List<DnsHarness.Figures> rounds) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-32} {f.Qps,10:N0} {f.AverageMs,8:0.000} {f.P99Ms,8:0.000} {f.LostPercent,7:0.00}% {cpuPerQuery,9:0.00}   {string.Join(' ', rounds.Select(r => r.Qps.ToString("N0", CultureInfo.InvariantCulture)))}"));

    /// <summary>Waits until every instance is Ready and the controller's DNS records name them all.</summary>
    private static async Task<DnsRecordSet> ServedAsync(HeddleApiClient api)
    {
        var clock = Stopwatch.StartNew();
        ServiceStatus? status = null;
        while (clock.Elapsed < TimeSpan.FromMinutes(3))
        {
            status = await api.GetServiceAsync("dnsbench");
            if (status.ReadyInstances == 12 && status.Vip is not null)
            {
                var records = await api.GetDnsRecordsAsync();
                if (records.Services.Where(s => s.Name == "dnsbench").SelectMany(s => s.Roles).Sum(r => r.Instances.Count) == 12)
                {
                    return records;
                }
            }

            await Task.Delay(200);
        }

        var states = status is null ? "no status" : string.Join(", ", status.Instances.Select(i => $"{i.Id} {i.State} {i.Reason}"));
        throw new InvalidOperationException($"dnsbench's 12 instances were not Ready and named in DNS within 3 minutes: {states}; VIP {status?.Vip ?? "none"}");
    }
}
