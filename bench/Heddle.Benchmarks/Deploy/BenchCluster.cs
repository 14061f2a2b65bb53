using System.Diagnostics;
using System.Globalization;
using Heddle.Contracts.Api;
using Heddle.Contracts.Files;

namespace Heddle.Benchmarks.Deploy;

/// <summary>A `heddle up` cluster of 3 nodes (and 1 or more controllers) in a temporary HEDDLE_HOME, with an API client that follows every controller; disposing stops it and removes the home.</summary>
internal sealed class BenchCluster : IAsyncDisposable
{
    private readonly Process _up;
    private readonly string _home;

    private BenchCluster(Process up, string home, HeddleApiClient api)
    {
        _up = up;
        _home = home;
        Api = api;
    }

    public HeddleApiClient Api { get; }

    /// <summary>The pids of the cluster's processes by name, and each controller's API URL, from up.json.</summary>
    public (Dictionary<string, int> Pids, Dictionary<string, int> Controllers) Processes()
    {
        var processes = (Heddle.Contracts.Files.StateFiles.Read<Heddle.Contracts.Files.UpState>(Path.Combine(_home, "up.json"))
            ?? throw new InvalidOperationException("up.json is missing or not whole")).Processes;
        return (processes.ToDictionary(p => p.Name, p => p.Pid),
            processes.Where(p => p.Name.StartsWith("controller", StringComparison.Ordinal) && p.Address is not null).ToDictionary(p => p.Address!, p => p.Pid));
    }

    public static async Task<BenchCluster> StartAsync(string heddle, int coresPerNode, int controllers = 1)
    {
        var home = Directory.CreateTempSubdirectory("heddle-bench-").FullName;
        var start = new ProcessStartInfo(heddle) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "up", "--nodes", "3", "--cores-per-node", coresPerNode.ToString(CultureInfo.InvariantCulture), "--controllers", controllers.ToString(CultureInfo.InvariantCulture), "--state", Path.Combine(home, "cluster") })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["HEDDLE_HOME"] = home;
        var up = Process.Start(start)!;
        _ = up.StandardOutput.ReadToEndAsync();
        _ = up.StandardError.ReadToEndAsync();
        var upFile = Path.Combine(home, "up.json");
        var clock = Stopwatch.StartNew();
        while (!File.Exists(upFile))
        {
            if (up.HasExited || clock.Elapsed > TimeSpan.FromSeconds(90))
            {
                await StopAsync(up, home);
                throw new InvalidOperationException("heddle up did not start");
            }

            await Task.Delay(50);
        }

        var config = ClientFile.Read(Path.Combine(home, "config.json"))!;
        var api = new HeddleApiClient(config.Controllers, config.Token, Heddle.Contracts.Trust.ClusterTrust.Load(config.Ca!));
        return new BenchCluster(up, home, api);
    }

    public async Task<long> LastEventIdAsync() => (await Api.ListEventsAsync()).Select(e => e.Id).DefaultIfEmpty(0).Max();

    public async ValueTask DisposeAsync()
    {
        Api.Dispose();
        await StopAsync(_up, _home);
        _up.Dispose();
    }

    private static async Task StopAsync(Process up, string home)
    {
        if (!up.HasExited)
        {
            Process.Start("kill", ["-TERM", up.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            try
            {
                await up.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                up.Kill(entireProcessTree: true);
            }
        }

        Directory.Delete(home, recursive: true);
    }
}
