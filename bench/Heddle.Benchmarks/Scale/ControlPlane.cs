using System.Diagnostics;
using Heddle.Contracts.Files;
using Heddle.Testing;

namespace Heddle.Benchmarks.Scale;

/// <summary>
/// The scale run's controllers: one on SQLite, or three on a 3-member etcd on loopback (controller 0 makes the cluster
/// CA and the admin token; the others are given the CA's files, as "Running on several machines" says). Stopped and
/// removed on dispose.
/// </summary>
internal sealed class ControlPlane : IAsyncDisposable
{
    private readonly List<Process> _controllers = [];
    private EtcdProcess? _etcd;

    private ControlPlane(string state)
    {
        State = state;
    }

    /// <summary>Controller 0's state folder: its api-token and ca.crt.</summary>
    public string State { get; }

    public List<Uri> ApiUrls { get; } = [];

    public List<string> AgentUrls { get; } = [];

    /// <summary>Every controller's process id, and every etcd member's.</summary>
    public IReadOnlyList<int> ControllerPids => [.. _controllers.Select(c => c.Id)];

    public IReadOnlyList<int> EtcdPids => _etcd?.Pids ?? [];

    public static async Task<ControlPlane> StartAsync(string heddle, TempDirectory home, string store, int nodeTimeoutSeconds, bool remoteDataPlanes)
    {
        var plane = new ControlPlane(home.Combine("controller"));
        try
        {
            var count = 1;
            string[] storeOption = [];
            if (store == "etcd")
            {
                plane._etcd = await EtcdProcess.StartAsync(members: 3);
                (count, storeOption) = (3, ["--store", plane._etcd.StoreOption]);
            }

            for (var k = 0; k < count; k++)
            {
                var state = k == 0 ? plane.State : home.Combine($"controller-{k}");
                if (k > 0)
                {
                    Directory.CreateDirectory(state);
                    foreach (var file in new[] { "ca.crt", "ca.key" })
                    {
                        File.Copy(Path.Combine(plane.State, file), Path.Combine(state, file));
                    }
                }

                plane._controllers.Add(ScaleHarness.Start(heddle, home.Combine($"controller-{k}.log"), null, ["controller", "--state", state, "--default-quota", "none", "--no-lb",
                    "--node-timeout", $"{nodeTimeoutSeconds}s", "--vip-pool", "127.80.0.0/16", .. storeOption, .. remoteDataPlanes ? new[] { "--no-dns" } : []]));
                var info = await Poll.UntilAsync(() => Task.FromResult(File.Exists(Path.Combine(state, "controller.json")) ? File.ReadAllText(Path.Combine(state, "controller.json")) : null),
                    t => t is not null && t.Contains("agentUrl", StringComparison.Ordinal), TimeSpan.FromSeconds(60), $"controller {k} started");
                var endpoints = System.Text.Json.JsonSerializer.Deserialize<ControllerEndpoints>(info!, StateFiles.Json)!;
                plane.ApiUrls.Add(endpoints.ApiUrl);
                plane.AgentUrls.Add(endpoints.AgentUrl.ToString());
            }

            return plane;
        }
        catch
        {
            await plane.DisposeAsync();
            throw;
        }
    }

    /// <summary>The store's size on disk, in MiB: SQLite's files, or every etcd member's data.</summary>
    public double StoreMiB() => (_etcd is { } etcd
        ? Directory.EnumerateFiles(etcd.DataDirectory, "*", SearchOption.AllDirectories)
        : Directory.EnumerateFiles(State, "cluster.db*")).Sum(f => new FileInfo(f).Length) / 1048576.0;

    public async ValueTask DisposeAsync()
    {
        foreach (var controller in _controllers)
        {
            await ScaleHarness.StopAsync(controller);
        }

        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
    }
}
