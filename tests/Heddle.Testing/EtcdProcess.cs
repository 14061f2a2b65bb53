using System.Diagnostics;
using System.Net.Sockets;

namespace Heddle.Testing;

/// <summary>
/// A one-member etcd (Debian's etcd-server) started by a test on loopback ports it picks, with its data in a folder
/// of its own; disposing stops it and removes the folder. Ports are not probed: a start that finds one taken is
/// retried on others.
/// </summary>
public sealed class EtcdProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TempDirectory _data;

    private EtcdProcess(Process process, TempDirectory data, Uri client)
    {
        _process = process;
        _data = data;
        ClientUrl = client;
    }

    public Uri ClientUrl { get; }

    public static async Task<EtcdProcess> StartAsync()
    {
        var data = new TempDirectory("heddle-etcd-");
        for (var attempt = 1; ; attempt++)
        {
            var client = Random.Shared.Next(30000, 60000);
            var peer = client + 1;
            var start = new ProcessStartInfo("etcd") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var arg in new[]
            {
                "--name", "test", "--data-dir", Path.Combine(data.Path, $"data{attempt}"),
                "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
                "--listen-peer-urls", $"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}",
                "--initial-cluster", $"test=http://127.0.0.1:{peer}", "--max-txn-ops", "10000", "--log-level", "warn",
            })
            {
                start.ArgumentList.Add(arg);
            }

            var process = Process.Start(start) ?? throw new InvalidOperationException("etcd did not start");
            var errors = new System.Text.StringBuilder();
            process.ErrorDataReceived += (_, e) => { lock (errors) { errors.AppendLine(e.Data); } };
            process.OutputDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            var url = new Uri($"http://127.0.0.1:{client}");
            if (await HealthyAsync(url, process))
            {
                return new EtcdProcess(process, data, url);
            }

            Stop(process);
            string text;
            lock (errors)
            {
                text = errors.ToString();
            }

            if (!text.Contains("address already in use", StringComparison.Ordinal) || attempt >= 5)
            {
                data.Dispose();
                throw new InvalidOperationException($"etcd did not become healthy on port {client}: {text}");
            }
        }
    }

    private static async Task<bool> HealthyAsync(Uri url, Process process)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(20) && !process.HasExited)
        {
            try
            {
                if ((await http.GetStringAsync(new Uri(url, "health"))).Contains("\"true\"", StringComparison.Ordinal))
                {
                    return true;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or SocketException)
            {
            }

            await Task.Delay(50);
        }

        return false;
    }

    private static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }

        process.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Stop(_process);
        _data.Dispose();
        return ValueTask.CompletedTask;
    }
}
