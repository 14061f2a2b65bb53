using System.Diagnostics;
using Heddle.Agent.Drivers;
using Heddle.Contracts.Api;
using Heddle.Controller;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>`heddle dns --controller URL`: the zone served from another process, fed by the controller's API.</summary>
public sealed class DnsCommandTests : IDisposable
{
    private readonly TempDirectory _state = new("heddle-dns-e2e-");

    public void Dispose() => _state.Dispose();

    [Fact]
    public async Task Dns_FollowsTheController_AndKeepsAnsweringWhenItIsGone()
    {
        var controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("controller") });
        using (var api = controller.Client())
        {
            var upload = await api.UploadPackageAsync(SamplePackage.File);
            await api.DeployAsync(new DeploymentRequest(upload.Sha256, File.ReadAllText(SamplePackage.ConfigurationPath)));
        }

        var start = new ProcessStartInfo(Heddle.Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "dns", "--controller", controller.ApiUrl.ToString(), "--ca-file", _state.Combine("controller", "ca.crt"), "--dns-port", "0" })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["HEDDLE_TOKEN"] = controller.ApiToken; // as `heddle up` hands it over: not on a command line

        using var dns = Process.Start(start)!;
        try
        {
            var banner = await dns.StandardOutput.ReadLineAsync() ?? string.Empty;
            Assert.StartsWith("dns ", banner);
            var endpoint = System.Net.IPEndPoint.Parse(banner.Split(" on ")[1].Split(' ')[0]);
            string Dig(string name) =>
                ProcessRunner.Run("dig", ["@" + endpoint.Address, "-p", endpoint.Port.ToString(), name], TimeSpan.FromSeconds(10)).Stdout;

            // No agents: the service answers its VIP, its role has no Ready instance (NODATA), other names do not exist.
            await Poll.UntilAsync(() => Task.FromResult(Dig("hello.heddle.internal")), d => d.Contains("status: NOERROR") && d.Contains("127.77.0.1"), TimeSpan.FromSeconds(10), "hello known to heddle dns");
            Assert.Contains("ANSWER: 0", Dig("web.hello.heddle.internal"));
            Assert.Contains("status: NXDOMAIN", Dig("other.heddle.internal"));

            await controller.DisposeAsync();

            Assert.Contains("127.77.0.1", Dig("hello.heddle.internal"));
            Assert.Contains("status: NXDOMAIN", Dig("other.heddle.internal"));
        }
        finally
        {
            Posix.Signal(dns.Id, Posix.SIGTERM);
            if (!dns.WaitForExit(TimeSpan.FromSeconds(20)))
            {
                dns.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>
    /// Systemd starts Heddle's units in /. The hosts inside `heddle dns` (its /metrics here) once watched their working
    /// directory's whole tree for configuration files: 45,005 inotify watches from /, each folder one. Now none.
    /// </summary>
    [Fact]
    public async Task Dns_StartedInAFolderWithFoldersBeneath_WatchesNoFile()
    {
        var controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("controller") });
        await using var _ = controller;
        var beneath = _state.Combine("work");
        for (var i = 0; i < 20; i++)
        {
            Directory.CreateDirectory(Path.Combine(beneath, $"f{i}", "deeper"));
        }

        var start = new ProcessStartInfo(Heddle.Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = beneath };
        foreach (var arg in new[] { "dns", "--controller", controller.ApiUrl.ToString(), "--ca-file", _state.Combine("controller", "ca.crt"), "--dns-port", "0", "--metrics-port", "0" })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["HEDDLE_TOKEN"] = controller.ApiToken;
        using var dns = Process.Start(start)!;
        try
        {
            var metrics = await dns.StandardOutput.ReadLineAsync() ?? string.Empty;
            var zone = await dns.StandardOutput.ReadLineAsync() ?? string.Empty;
            Assert.Contains("metrics at", metrics);
            Assert.Contains(" on ", zone);
            var watches = Directory.GetFiles($"/proc/{dns.Id}/fdinfo").Sum(f => File.ReadLines(f).Count(l => l.StartsWith("inotify ", StringComparison.Ordinal)));
            Assert.True(watches == 0, $"heddle dns, started in a folder with 40 folders beneath, holds {watches} inotify watches");
        }
        finally
        {
            Posix.Signal(dns.Id, Posix.SIGTERM);
            if (!dns.WaitForExit(TimeSpan.FromSeconds(20)))
            {
                dns.Kill(entireProcessTree: true);
            }
        }
    }
}
