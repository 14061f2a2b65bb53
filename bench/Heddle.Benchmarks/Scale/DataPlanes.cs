using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using Heddle.Testing;

namespace Heddle.Benchmarks.Scale;

/// <summary>
/// The scale run's remote data planes: a `heddle dns` and a `heddle lb` process following the controller's changes, as
/// on hosts of their own; their CPU (from /proc) and the changes they are sent (counted on a stream of the same kind
/// beside them), by phase, give each one's CPU per change.
/// </summary>
internal sealed class DataPlanes : IAsyncDisposable
{
    private readonly List<(string Name, Process Process, ProcessSampler Cpu, ChangeStreamCounter Changes)> _planes = [];

    private DataPlanes()
    {
    }

    public static async Task<DataPlanes> StartAsync(string heddle, TempDirectory home, ControlPlane control, X509Certificate2 ca)
    {
        var planes = new DataPlanes();
        var (tokenFile, caFile) = (Path.Combine(control.State, "api-token"), Path.Combine(control.State, "ca.crt"));
        var (apiUrl, token) = (control.ApiUrls[0], File.ReadAllText(tokenFile).Trim());
        string[] common = ["--controller", string.Join(',', control.ApiUrls), "--token-file", tokenFile, "--ca-file", caFile];
        (string Name, string Path, string[] Args)[] followers =
        [
            ("dns", "v1/dns/records", ["dns", "--dns-port", "0", .. common]),
            ("lb", "v1/lb/config", ["lb", "--name", "bench-lb", "--address", "127.0.0.1", .. common]),
        ];
        foreach (var (name, path, args) in followers)
        {
            var process = ScaleHarness.Start(heddle, home.Combine($"{name}.log"), null, args);
            planes._planes.Add((name, process, new ProcessSampler(process.Id), new ChangeStreamCounter(apiUrl, token, ca, path)));
        }

        // Both follow before the nodes join: what they are sent from then on is the run's.
        await Poll.UntilAsync(() => planes._planes.All(p => p.Changes.WholeBytes >= 0 && !p.Process.HasExited), TimeSpan.FromSeconds(30), "the DNS and balancer followers started");
        return planes;
    }

    public void Reset()
    {
        foreach (var plane in _planes)
        {
            plane.Cpu.Reset();
            plane.Changes.Reset();
        }
    }

    /// <summary>Each one's CPU seconds, the changes it was sent and their bytes since <see cref="Reset"/>, as figures named "{plane}_{phase}_...".</summary>
    public void Take(Dictionary<string, object> figures, string phase)
    {
        foreach (var (name, process, cpu, changes) in _planes)
        {
            var (count, bytes) = changes.Take();
            var seconds = cpu.CpuSeconds();
            figures[$"{name}_{phase}_cpu_s"] = seconds;
            figures[$"{name}_{phase}_changes"] = (double)count;
            figures[$"{name}_{phase}_ms_per_change"] = count == 0 ? 0.0 : seconds * 1000 / count;
            figures[$"{name}_{phase}_bytes_per_change"] = count == 0 ? 0.0 : (double)bytes / count;
            figures[$"{name}_{phase}_rss_mib"] = cpu.Take().PeakRssMiB;
            if (process.HasExited)
            {
                figures["failed"] = $"heddle {name} exited with {process.ExitCode} (see its log)";
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (_, process, cpu, changes) in _planes)
        {
            await changes.DisposeAsync();
            await cpu.DisposeAsync();
            await ScaleHarness.StopAsync(process);
        }
    }
}
