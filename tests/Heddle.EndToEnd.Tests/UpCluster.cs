using System.Diagnostics;
using System.Text.Json;
using Heddle.Agent.Drivers;
using Heddle.Contracts.Files;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// `heddle up` started as a user starts it, with its own HEDDLE_HOME; disposing stops it with SIGTERM (which stops
/// everything it started) and removes the home.
/// </summary>
public sealed class UpCluster : IAsyncDisposable
{
    private readonly TempDirectory _home;
    private readonly Task<string> _output;
    private readonly Task<string> _errors;

    private UpCluster(TempDirectory home, Process process)
    {
        _home = home;
        Process = process;
        _output = process.StandardOutput.ReadToEndAsync();
        _errors = process.StandardError.ReadToEndAsync();
    }

    public Process Process { get; }

    public string Home => _home.Path;

    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["HEDDLE_HOME"] = _home.Path };

    public string UpFile => Path.Combine(_home.Path, "up.json");

    public static async Task<UpCluster> StartAsync(params string[] extra)
    {
        var home = new TempDirectory("heddle-up-");
        File.SetUnixFileMode(home.Path, global::Heddle.Agent.Isolation.StateFolders.PassThrough); // instances, as their own uids, pass through to their folders
        var start = new ProcessStartInfo(Heddle.Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] timeout = extra.Contains("--node-timeout") ? [] : ["--node-timeout", "3s"];
        string[] args = ["up", "--nodes", "3", .. timeout, "--state", home.Combine("cluster"), .. extra];
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["HEDDLE_HOME"] = home.Path;
        var cluster = new UpCluster(home, Process.Start(start)!);
        await Poll.UntilAsync(() => File.Exists(cluster.UpFile) || cluster.Process.HasExited, TimeSpan.FromSeconds(90), "heddle up to write up.json");
        if (cluster.Process.HasExited)
        {
            var output = $"heddle up exited with {cluster.Process.ExitCode}: {await cluster._output} {await cluster._errors}";
            await cluster.DisposeAsync();
            throw new InvalidOperationException(output);
        }

        return cluster;
    }

    public ProcessResult Run(params string[] args) => Heddle.Run(Environment, args);

    /// <summary>Deploys the hello sample with `--wait`; the cluster's DNS server address (from `heddle info`) and hello's VIP.</summary>
    public (System.Net.IPEndPoint Dns, string Vip) DeploySample()
    {
        var deploy = Run("deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath, "--wait");
        Assert.True(deploy.ExitCode == 0, deploy.ToString());
        using var info = JsonDocument.Parse(Run("info", "-o", "json").Stdout);
        using var status = JsonDocument.Parse(Run("status", "hello", "-o", "json").Stdout);
        return (System.Net.IPEndPoint.Parse(info.RootElement.GetProperty("dnsAddress").GetString()!), status.RootElement.GetProperty("vip").GetString()!);
    }

    /// <summary>The pids `heddle up` names in up.json, by process name (controller, n1, ...).</summary>
    public Dictionary<string, int> Processes()
    {
        return State().Processes.ToDictionary(p => p.Name, p => p.Pid);
    }

    /// <summary>Where each process `heddle up` names in up.json serves /metrics, by process name (controller, dns, lb, n1, ...).</summary>
    public Dictionary<string, Uri> MetricsUrls()
    {
        return State().Processes.Where(p => p.Metrics is not null).ToDictionary(p => p.Name, p => new Uri(p.Metrics!));
    }

    private UpState State() =>
        StateFiles.Read<UpState>(UpFile) ?? throw new InvalidOperationException($"{UpFile} is missing or not whole");

    /// <summary>Stops the cluster as Ctrl-C would; returns its exit code and what it printed.</summary>
    public async Task<(int ExitCode, string Output)> StopAsync()
    {
        if (!Process.HasExited)
        {
            Posix.Signal(Process.Id, Posix.SIGTERM);
            if (!Process.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                Process.Kill(entireProcessTree: true);
            }
        }

        await Process.WaitForExitAsync();
        return (Process.ExitCode, await _output);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Process.Dispose();
        _home.Dispose();
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class UpCollection
{
    /// <summary>Clusters from `heddle up` share loopback addresses and the VIP pool: one at a time.</summary>
    public const string Name = "heddle up";
}
