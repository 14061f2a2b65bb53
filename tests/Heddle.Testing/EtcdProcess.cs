using System.Diagnostics;

namespace Heddle.Testing;

/// <summary>
/// An etcd cluster (Debian's etcd-server) of one or more members started by a test on loopback ports it picks, each
/// with its data in a folder of its own; members can be stopped (killed) and started again on their data; disposing
/// stops them all and removes the folders. Ports are not probed: a start that finds one taken is retried on others.
/// </summary>
public sealed class EtcdProcess : IAsyncDisposable
{
    private readonly TempDirectory _data;
    private readonly Process?[] _members;
    private readonly int[] _clientPorts;
    private readonly string _initialCluster;

    private EtcdProcess(TempDirectory data, int[] clientPorts, string initialCluster)
    {
        _data = data;
        _clientPorts = clientPorts;
        _initialCluster = initialCluster;
        _members = new Process?[clientPorts.Length];
    }

    /// <summary>The first member's client URL.</summary>
    public Uri ClientUrl => ClientUrls[0];

    public IReadOnlyList<Uri> ClientUrls => [.. _clientPorts.Select(p => new Uri($"http://127.0.0.1:{p}"))];

    public static async Task<EtcdProcess> StartAsync(int members = 1)
    {
        var data = new TempDirectory("heddle-etcd-");
        for (var attempt = 1; ; attempt++)
        {
            var basePort = Random.Shared.Next(30000, 60000 - (2 * members));
            var clients = Enumerable.Range(0, members).Select(i => basePort + (2 * i)).ToArray();
            var initial = string.Join(',', clients.Select((p, i) => $"m{i}=http://127.0.0.1:{p + 1}"));
            var cluster = new EtcdProcess(data, clients, initial);
            var errors = await Task.WhenAll(Enumerable.Range(0, members).Select(i => cluster.StartMemberAsync(i, attempt)));
            if (errors.All(e => e is null))
            {
                return cluster;
            }

            cluster.StopAll();
            if (!errors.Any(e => e?.Contains("address already in use", StringComparison.Ordinal) == true) || attempt >= 5)
            {
                data.Dispose();
                throw new InvalidOperationException($"etcd did not become healthy: {string.Join(" | ", errors.Where(e => e is not null))}");
            }
        }
    }

    /// <summary>Kills member <paramref name="index"/> (as a crash would).</summary>
    public void Kill(int index)
    {
        Stop(_members[index]);
        _members[index] = null;
    }

    /// <summary>Starts member <paramref name="index"/> again on its data.</summary>
    public async Task RestartAsync(int index)
    {
        var error = await StartMemberAsync(index, attempt: _attempt, existing: true);
        if (error is not null)
        {
            throw new InvalidOperationException($"etcd member m{index} did not come back: {error}");
        }
    }

    private int _attempt;

    /// <summary>Starts a member and waits until it answers; null, or what it said on stderr.</summary>
    private async Task<string?> StartMemberAsync(int index, int attempt, bool existing = false)
    {
        _attempt = attempt;
        var client = _clientPorts[index];
        var start = new ProcessStartInfo("etcd") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[]
        {
            "--name", $"m{index}", "--data-dir", Path.Combine(_data.Path, $"try{attempt}", $"m{index}"),
            "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
            "--listen-peer-urls", $"http://127.0.0.1:{client + 1}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{client + 1}",
            "--initial-cluster", _initialCluster, "--initial-cluster-state", existing ? "existing" : "new",
            "--max-txn-ops", "10000", "--log-level", "warn",
        })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("etcd did not start");
        var errors = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            lock (errors)
            {
                errors.AppendLine(e.Data);
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        _members[index] = process;
        if (await HealthyAsync(new Uri($"http://127.0.0.1:{client}"), process))
        {
            return null;
        }

        lock (errors)
        {
            return $"m{index} on port {client}: {errors}";
        }
    }

    /// <summary>Whether the member answers healthy within 30 s (false at once if it exits, as when its port is taken).</summary>
    private static async Task<bool> HealthyAsync(Uri url, Process process)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            return await Poll.UntilAsync(async () => !process.HasExited && (await http.GetStringAsync(new Uri(url, "health"))).Contains("\"true\"", StringComparison.Ordinal),
                healthy => healthy || process.HasExited, TimeSpan.FromSeconds(30), $"etcd at {url} healthy");
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private static void Stop(Process? process)
    {
        if (process is null)
        {
            return;
        }

        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }

        process.Dispose();
    }

    private void StopAll()
    {
        for (var i = 0; i < _members.Length; i++)
        {
            Kill(i);
        }
    }

    public ValueTask DisposeAsync()
    {
        StopAll();
        _data.Dispose();
        return ValueTask.CompletedTask;
    }
}
