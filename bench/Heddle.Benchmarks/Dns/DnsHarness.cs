using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Heddle.Contracts.Api;
using Heddle.Dns;
using Heddle.Dns.Server;

namespace Heddle.Benchmarks.Dns;

/// <summary>
/// Heddle's DNS server against Knot DNS (one UDP worker) and dnsmasq, in one run, serving the same names, each
/// measured with dnsperf and the same query mix: A (service, role, instance), AAAA (NODATA), SRV, NXDOMAIN.
/// Options: --seconds N (default 5) --clients N (default 4) --rounds N (default 1) --outstanding N (default 100) --udp-workers N (heddle's, default 1) --guard R (exit code 3 when
/// heddle / knot is below R) --via-up (<see cref="DnsViaUp"/>).
/// </summary>
internal static class DnsHarness
{
    private const string Zone = "heddle.internal";

    public static int Run(string[] args)
    {
        if (args.Contains("--via-up"))
        {
            return DnsViaUp.Run(args);
        }

        var seconds = Int(args, "--seconds", 5);
        var clients = Int(args, "--clients", 4);
        var roundCount = Int(args, "--rounds", 1);
        var outstanding = Int(args, "--outstanding", 100);
        var workers = Int(args, "--udp-workers", 1);
        var guard = new RatioGuard(args);
        using var work = new TemporaryFolder();
        var records = BenchRecords();
        var queries = Path.Combine(work.Path, "queries.txt");
        File.WriteAllLines(queries, Queries(records));
        Console.WriteLine($"dns benchmark: {records.Services.Count} services, {Names(records)} names; dnsperf -c {clients} -q {outstanding} -l {seconds}, same query mix for every server; after a 1 s warm-up of each, median of {roundCount} round(s) taken in turns");
        Console.WriteLine("query mix: 40% A (service, role, instance), 20% AAAA (NODATA), 20% SRV, 20% NXDOMAIN; every server answers on 127.0.0.1 over UDP");
        Console.WriteLine();
        Console.WriteLine($"{"server",-30} {"queries/s",10} {"avg ms",8} {"p99 ms",8} {"lost",8} {"answers",10}");

        // The three serve at once and are measured in turns, each figure the median of its rounds: a noisy moment on a
        // shared machine falls on every server alike.
        using var server = Start(workers);
        using var knot = Knot.Start(work.Path, records);
        using var dnsmasq = Dnsmasq.Start(work.Path, records);
        var servers = new[] { ($"heddle ({workers} UDP worker{(workers == 1 ? "" : "s")})", server.Port), ("knot 3 (1 UDP worker)", knot.Port), ("dnsmasq", dnsmasq.Port) };
        foreach (var (_, port) in servers)
        {
            Measure(port, queries, 1, clients, outstanding); // a warm-up each, discarded: the JIT and the sockets settle
        }

        var rounds = servers.Select(_ => new List<Figures>()).ToArray();
        for (var round = 0; round < roundCount; round++)
        {
            for (var i = 0; i < servers.Length; i++)
            {
                rounds[i].Add(Measure(servers[i].Port, queries, seconds, clients, outstanding));
            }
        }

        var results = servers.Select((s, i) => (s.Item1, Figures: Figures.Median(rounds[i]))).ToList();
        foreach (var (name, f) in results)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-30} {f.Qps,10:N0} {f.AverageMs,8:0.000} {f.P99Ms,8:0.000} {f.LostPercent,7:0.00}% {f.Answered,10:N0}"));
        }

        var knotQps = results[1].Figures.Qps;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"heddle / knot: {results[0].Figures.Qps / knotQps:0.00}x queries/s (target >= 1.0x at 0% loss)"));
        guard.Add($"DNS {clients} clients", results[0].Figures.Qps / knotQps);
        return guard.Verdict();
    }

    internal sealed record Figures(double Qps, double AverageMs, double P99Ms, double LostPercent, long Answered)
    {
        /// <summary>Each figure's median over the rounds (queries/s, latencies and loss taken apart); the answers summed.</summary>
        public static Figures Median(IReadOnlyList<Figures> rounds) => new(Statistics.Median(rounds.Select(r => r.Qps)), Statistics.Median(rounds.Select(r => r.AverageMs)),
            Statistics.Median(rounds.Select(r => r.P99Ms)), Statistics.Median(rounds.Select(r => r.LostPercent)), rounds.Sum(r => r.Answered));
    }

    /// <summary>
    /// One dnsperf run. dnsperf's every answer line (-v, for the p99) goes to a file and is read after it exits:
    /// read live, the reading (150,000 lines a second, in this process) took CPU from dnsperf and the server measured,
    /// on a 2-CPU machine, which held every server to the client's pace.
    /// </summary>
    internal static Figures Measure(int port, string queries, int seconds, int clients, int outstanding, string address = "127.0.0.1")
    {
        var output = Path.Combine(Path.GetTempPath(), $"heddle-dnsperf-{Environment.ProcessId}-{Guid.NewGuid():N}.txt");
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-c", "out=$1; shift; exec dnsperf \"$@\" > \"$out\"", "sh", output, "-s", address, "-p", port.ToString(CultureInfo.InvariantCulture), "-d", queries,
                     "-l", seconds.ToString(CultureInfo.InvariantCulture), "-c", clients.ToString(CultureInfo.InvariantCulture), "-q", outstanding.ToString(CultureInfo.InvariantCulture), "-v" })
        {
            start.ArgumentList.Add(arg);
        }

        try
        {
            using (var process = Process.Start(start)!)
            {
                var errors = process.StandardError.ReadToEnd();
                process.WaitForExit();
                if (process.ExitCode != 0)
                {
                    throw new InvalidOperationException($"dnsperf failed: {errors}");
                }
            }

            return Parse(File.ReadLines(output));
        }
        finally
        {
            File.Delete(output);
        }
    }

    /// <summary>dnsperf -v's output: "> NOERROR name TYPE 0.000123" per answer (the last field the latency in seconds), then its summary.</summary>
    internal static Figures Parse(IEnumerable<string> lines)
    {
        var latencies = new List<double>(1 << 20);
        double qps = 0, average = 0, lostPercent = 0;
        long completed = 0;
        foreach (var line in lines)
        {
            if (line.StartsWith("> ", StringComparison.Ordinal))
            {
                var last = line.LastIndexOf(' ');
                if (double.TryParse(line.AsSpan(last + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var latency))
                {
                    latencies.Add(latency);
                }
            }
            else if (line.Contains("Queries per second:", StringComparison.Ordinal))
            {
                qps = Number(line);
            }
            else if (line.Contains("Average Latency (s):", StringComparison.Ordinal))
            {
                average = Number(line) * 1000;
            }
            else if (line.Contains("Queries completed:", StringComparison.Ordinal))
            {
                completed = (long)Number(line);
            }
            else if (line.Contains("Queries lost:", StringComparison.Ordinal))
            {
                var open = line.IndexOf('(');
                lostPercent = open > 0 ? Number(line[(open + 1)..]) : 0;
            }
        }

        latencies.Sort();
        var p99 = latencies.Count == 0 ? 0 : latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * 0.99))] * 1000;
        return new Figures(qps, average, p99, lostPercent, completed);
    }

    private static double Number(string line)
    {
        var text = line[(line.IndexOf(':') is var c && c >= 0 ? c + 1 : 0)..].Trim();
        var end = 0;
        while (end < text.Length && (char.IsDigit(text[end]) || text[end] is '.' or ','))
        {
            end++;
        }

        return double.Parse(text[..end].Replace(",", string.Empty), CultureInfo.InvariantCulture);
    }

    internal static DnsRecordSet Records(int services, int instancesPerRole)
    {
        var list = new List<DnsService>();
        for (var s = 0; s < services; s++)
        {
            var roles = new[] { "web", "api" }.Select((role, r) => new DnsRole(role,
                [.. Enumerable.Range(0, instancesPerRole).Select(i => new DnsInstance(i, $"127.{1 + r}.{s}.{i + 1}", [new DnsEndpoint("http", "tcp", 20000 + i)]))])).ToList();
            list.Add(new DnsService($"svc{s}", [], roles));
        }

        return new DnsRecordSet { Serial = 1, Services = list };
    }

    /// <summary>The names every server of the run serves (Heddle's, in its own process, makes them again).</summary>
    private static DnsRecordSet BenchRecords() => Records(services: 50, instancesPerRole: 4);

    internal static int Names(DnsRecordSet records) => records.Services.Sum(s => 1 + s.Roles.Sum(r => 2 + r.Instances.Count));

    internal static IEnumerable<string> Queries(DnsRecordSet records)
    {
        var random = new Random(1);
        for (var i = 0; i < 100_000; i++)
        {
            var service = records.Services[random.Next(records.Services.Count)];
            var role = service.Roles[random.Next(service.Roles.Count)];
            var kind = random.Next(10);
            yield return kind switch
            {
                0 or 1 => $"{service.Name}.{Zone} A",
                2 => $"{role.Name}.{service.Name}.{Zone} A",
                3 => $"{random.Next(role.Instances.Count)}.{role.Name}.{service.Name}.{Zone} A",
                4 or 5 => $"{role.Name}.{service.Name}.{Zone} AAAA",
                6 or 7 => $"_http._tcp.{role.Name}.{service.Name}.{Zone} SRV",
                _ => $"missing{random.Next(1000)}.{service.Name}.{Zone} A",
            };
        }
    }

    /// <summary>
    /// Heddle's server in a process of its own (this harness's `dns-serve`), as Knot and dnsmasq are: the harness's own
    /// work (reading dnsperf's every answer, its collections) never pauses it.
    /// </summary>
    private static ReferenceServer Start(int workers) => ReferenceServer.OnReservedPort(port => ReferenceServer.Launch("dotnet",
        [typeof(DnsHarness).Assembly.Location, "dns-serve", "--port", port.ToString(CultureInfo.InvariantCulture), "--udp-workers", workers.ToString(CultureInfo.InvariantCulture)], port));

    /// <summary>`dns-serve --port P --udp-workers N`: Heddle's DNS server with the benchmark's names, until it is killed.</summary>
    public static int Serve(string[] args)
    {
        var server = DnsServer.Start(new DnsOptions { Port = Int(args, "--port", 0), UdpWorkers = Int(args, "--udp-workers", 1) },
            new Heddle.Contracts.Metrics.MeterScope()); // counting as in production
        server.Update(BenchRecords());
        Thread.Sleep(Timeout.Infinite);
        return 0;
    }

    /// <summary>A reference server run as a child process, stopped by its id.</summary>
    internal sealed class ReferenceServer(Process process, int port) : IDisposable
    {
        public int Port { get; } = port;

        public int ProcessId => process.Id;

        public void Dispose()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }
            else
            {
                process.WaitForExit(TimeSpan.FromSeconds(5)); // what it wrote before it ended is read
            }

            process.Dispose();
        }

        /// <summary>
        /// Starts a server on a port of <see cref="BenchPorts"/>, again on another (up to 10 tries) when the port turns
        /// out to be taken: the server fails to bind, or shares the port with another process.
        /// </summary>
        public static ReferenceServer OnReservedPort(Func<int, ReferenceServer> start) => BenchPorts.Start(1, ports => start(ports[0]));

        /// <summary>Starts a server and waits until it accepts TCP connections on the port, and holds it alone.</summary>
        public static ReferenceServer LaunchTcp(string file, IEnumerable<string> args, int port) => Launch(file, args, port, AcceptsTcp, udp: false);

        /// <summary>Starts a DNS server and waits until it answers over UDP on the port, and holds it (UDP and TCP) alone.</summary>
        public static ReferenceServer Launch(string file, IEnumerable<string> args, int port) => Launch(file, args, port, Answers, udp: true);

        /// <summary>
        /// Starts a server told to listen on <paramref name="port"/> and waits until it is <paramref name="ready"/>.
        /// Throws <see cref="PortClashException"/> when the port is taken: the server says "address already in use"
        /// (exiting or not) or, ready, shares the port with a socket of another process (SO_REUSEPORT).
        /// </summary>
        private static ReferenceServer Launch(string file, IEnumerable<string> args, int port, Func<int, bool> ready, bool udp)
        {
            var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in args)
            {
                start.ArgumentList.Add(arg);
            }

            var process = Process.Start(start)!;
            var errors = new StringBuilder();
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    lock (errors)
                    {
                        errors.AppendLine(line);
                    }
                }
            };
            process.OutputDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            string Said()
            {
                lock (errors)
                {
                    return errors.ToString();
                }
            }

            var server = new ReferenceServer(process, port);
            var clock = Stopwatch.StartNew();
            while (true)
            {
                if (ready(port))
                {
                    if (BenchPorts.Stranger(process.Id, port, udp) is { } stranger)
                    {
                        server.Dispose();
                        throw new PortClashException($"{file} shares port {port}: {stranger}");
                    }

                    return server;
                }

                if (process.HasExited || clock.Elapsed > TimeSpan.FromSeconds(20) || InUse(Said()))
                {
                    server.Dispose(); // and all it wrote is read
                    var said = Said();
                    throw InUse(said) ? new PortClashException($"{file} could not bind port {port}: {said}") : new InvalidOperationException($"{file} did not start: {said}");
                }

                Thread.Sleep(50); // waiting for a server to come up, bounded by the deadline above
            }
        }

        /// <summary>What nginx, HAProxy, Knot and dnsmasq write when their port is taken ("Address already in use", Knot's "address already in use").</summary>
        private static bool InUse(string said) => said.Contains("already in use", StringComparison.OrdinalIgnoreCase);

        private static bool AcceptsTcp(int port)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }

        private static bool Answers(int port)
        {
            using var udp = new UdpClient();
            udp.Client.ReceiveTimeout = 200;
            byte[] query = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 6, .. "heddle"u8, 8, .. "internal"u8, 0, 0, 6, 0, 1];
            try
            {
                udp.Send(query, new IPEndPoint(IPAddress.Loopback, port));
                IPEndPoint? from = null;
                return udp.Receive(ref from).Length > 12;
            }
            catch (SocketException)
            {
                return false;
            }
        }
    }

    internal static int Int(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    internal sealed class TemporaryFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("heddle-dns-bench-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
