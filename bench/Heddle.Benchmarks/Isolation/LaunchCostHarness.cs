using System.Diagnostics;
using System.Globalization;
using Heddle.Agent.Drivers;
using Heddle.Agent.Isolation;
using Heddle.Model.Definition;

namespace Heddle.Benchmarks.Isolation;

/// <summary>
/// What an instance's own disk and namespaces cost at launch, as root: the process driver's launch as the agent runs
/// it (disk image made and mounted, a copy of the role folder on it, its mount namespace made, its service's user
/// namespace entered — made once per uid and host, so after the first trial it is there —, cgroups, setpriv) against the reference, the launch as it was before them (a copy of the role
/// folder in a plain folder, the same cgroups, taskset and setpriv from a setsid shell), interleaved in the same run.
/// Each is timed from the start of the launch to the moment the instance's own command has run (it writes a file).
/// Options: --trials N (default 20).
/// </summary>
internal static class LaunchCostHarness
{
    private static readonly Identity Service = new(264_990, 264_990);

    public static int Run(string[] args)
    {
        if (!Posix.IsRoot)
        {
            Console.Error.WriteLine("isolation benchmark: run as root (instances get disks, namespaces and cgroups only then)");
            return 2;
        }

        var trials = int.Parse(Option(args, "--trials") ?? "20", CultureInfo.InvariantCulture);
        var root = Path.Combine("/var/tmp", $"heddle-bench-launch-{Guid.NewGuid():N}"[..32]);
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, StateFolders.PassThrough);
        var role = Path.Combine(root, "role");
        Directory.CreateDirectory(role);
        File.WriteAllText(Path.Combine(role, "app.txt"), "a role folder of one file\n");
        var cgroups = Cgroups.Open("bench-launch", root, out var unavailable) ?? throw new InvalidOperationException($"no cgroups: {unavailable}");
        var driver = new ProcessDriver(cgroups, null, TimeProvider.System);
        var isolated = new List<double>();
        var reference = new List<double>();
        var disk = new List<double>();
        try
        {
            for (var i = 0; i < trials + 1; i++)
            {
                var (total, diskOnly) = Isolated(driver, root, role, i);
                var plain = Reference(cgroups, root, role, i);
                if (i > 0) // the first of each warms the file cache and the JIT
                {
                    isolated.Add(total);
                    disk.Add(diskOnly);
                    reference.Add(plain);
                }
            }
        }
        finally
        {
            cgroups.RemoveAll();
            InstanceDisk.RemoveAllUnder(root);
            UserNamespaces.Release(Service.Uid);
            Directory.Delete(root, recursive: true);
        }

        isolated.Sort();
        reference.Sort();
        disk.Sort();
        double Median(List<double> values) => values[values.Count / 2];
        Console.WriteLine($"launch cost: start of the launch → the instance's command has run, one instance at a time, median of {trials}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  with its own disk and namespaces (the agent's launch now)  {Median(isolated),7:0.0} ms   (p10 {isolated[trials / 10]:0.0}, p90 {isolated[trials * 9 / 10]:0.0})"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    of which the disk (mkfs.ext4 + loop mount)            {Median(disk),7:0.0} ms"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  reference: plain folder, cgroups, setpriv (before)       {Median(reference),7:0.0} ms   (p10 {reference[trials / 10]:0.0}, p90 {reference[trials * 9 / 10]:0.0})"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  cost of the disk and the namespaces per instance         {Median(isolated) - Median(reference),7:0.0} ms   (target: at most 30 ms)"));
        return 0;
    }

    private static (double Total, double Disk) Isolated(ProcessDriver driver, string root, string role, int i)
    {
        var directory = Path.Combine(root, $"isolated-{i}");
        Directory.CreateDirectory(Path.Combine(directory, "logs"));
        File.SetUnixFileMode(directory, StateFolders.PassThrough);
        var launch = new InstanceLaunch
        {
            Id = $"bench/launch/{i}",
            Role = new RoleDefinition { Name = "launch", EntryPoint = new EntryPoint("/bin/sh", ["-c", "echo ran > ran; exec /bin/sleep 300"]), Size = new RoleSize(1, 128) },
            Directory = directory,
            RoleDirectory = role,
            RealCpus = [0],
            MemoryMiB = 128,
            Environment = new Dictionary<string, string> { ["HEDDLE_INSTANCE"] = $"bench/launch/{i}" },
            RunAs = Service,
        };
        var clock = Stopwatch.StartNew();
        InstanceDisk.Ensure(directory, launch.Role.Size.DiskMiB);
        var diskOnly = clock.Elapsed.TotalMilliseconds;
        driver.PrepareDisk(launch);
        var running = driver.Start(launch);
        WaitFor(Path.Combine(launch.WorkingDirectory, "ran"));
        var total = clock.Elapsed.TotalMilliseconds;
        driver.StopAsync(running, TimeSpan.FromSeconds(1), CancellationToken.None).GetAwaiter().GetResult();
        driver.Cleanup(launch.Id, directory);
        return (total, diskOnly);
    }

    private static double Reference(Cgroups cgroups, string root, string role, int i)
    {
        var id = $"bench/reference/{i}";
        var directory = Path.Combine(root, $"reference-{i}");
        var app = Path.Combine(directory, "app");
        Directory.CreateDirectory(Path.Combine(directory, "logs"));
        File.SetUnixFileMode(directory, StateFolders.PassThrough);
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(app);
        foreach (var file in Directory.EnumerateFiles(role))
        {
            File.Copy(file, Path.Combine(app, Path.GetFileName(file)));
        }

        StateFolders.Chown(app, Service);
        File.SetUnixFileMode(app, StateFolders.Private);
        var files = cgroups.Create(id, [0], 128L << 20, RoleSize.DefaultMaxProcesses);
        var script = Path.Combine(directory, "launch.sh");
        File.WriteAllText(script, string.Concat(files.Select(f => $"echo $$ > {f}\n"))
            + $"exec >>{directory}/logs/stdout.log 2>>{directory}/logs/stderr.log </dev/null\n"
            + $"exec {HostPrograms.Taskset} -c 0 {HostPrograms.Setpriv} --reuid={Service.Uid} --regid={Service.Gid} --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- /bin/sh -c 'echo ran > ran; exec /bin/sleep 300'\n");
        var start = new ProcessStartInfo(HostPrograms.Setsid, [HostPrograms.Shell, script]) { WorkingDirectory = app, UseShellExecute = false };
        using var process = Process.Start(start)!;
        WaitFor(Path.Combine(app, "ran"));
        var total = clock.Elapsed.TotalMilliseconds;
        process.Kill();
        process.WaitForExit();
        cgroups.KillAll(id);
        for (var wait = 0; wait < 200 && cgroups.Tasks(id).Count > 0; wait++)
        {
            Thread.Sleep(5);
        }

        cgroups.Remove(id);
        return total;
    }

    private static void WaitFor(string file)
    {
        var clock = Stopwatch.StartNew();
        while (!File.Exists(file))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(20))
            {
                throw new TimeoutException($"{file} was never written");
            }

            Thread.SpinWait(200);
        }
    }

    private static string? Option(string[] args, string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
}
