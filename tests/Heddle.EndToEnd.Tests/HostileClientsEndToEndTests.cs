using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Model.Packages;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// The attacks of issue 13 against a cluster started with `heddle up`, one after another: after each, `dig` and `curl`
/// through the service's VIP still answer, the API still answers, and the controller is the same process.
/// </summary>
[Collection(UpCollection.Name)]
public sealed class HostileClientsEndToEndTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly IPAddress Attacker = IPAddress.Parse("127.0.0.2");

    [Fact]
    public async Task AfterEachAttack_DigCurlAndTheApiAnswer_AndTheControllerIsTheSameProcess()
    {
        await using var up = await UpCluster.StartAsync("--node-timeout", "10s");
        var (dns, vip) = up.DeploySample();
        var config = ClientConfigFile.Read(up.Home);
        var apiUrl = config.ApiUrl;
        using var api = config.Connect();
        var controller = up.Processes()["controller"];
        var sample = await api.UploadPackageAsync(SamplePackage.File);
        var checks = new List<string>();

        async Task StillStandingAsync(string attack)
        {
            foreach (var transport in new[] { "+notcp", "+tcp" })
            {
                var dig = ProcessRunner.Run("dig", ["@" + dns.Address, "-p", dns.Port.ToString(), "+short", "+tries=1", "+time=3", transport, "hello.heddle.internal"], TimeSpan.FromSeconds(10));
                Assert.True(dig.Stdout.Trim() == vip, $"after {attack}: dig {transport} answered '{dig.Stdout.Trim()}' {dig.Stderr}");
            }

            var curl = ProcessRunner.Run("curl", ["-sS", "--max-time", "5", $"http://{vip}:8080/"], TimeSpan.FromSeconds(10));
            Assert.True(curl.ExitCode == 0 && curl.Stdout.StartsWith("hi from hello/web/", StringComparison.Ordinal), $"after {attack}: curl through the VIP: {curl}");
            var cli = up.Run("status", "hello");
            Assert.True(cli.ExitCode == 0, $"after {attack}: heddle status: {cli}");
            Assert.True(up.Processes()["controller"] == controller && !Process.GetProcessById(controller).HasExited, $"after {attack}: the controller is not the same process");
            checks.Add(attack);
        }

        await StillStandingAsync("deploy");

        // A configuration with an unclosed flow mapping, and one nested 50,000 deep: 400 with a diagnostic each.
        foreach (var (name, text, code) in new[]
        {
            ("unclosed flow mapping", "service: hello\nroles:\n  web: { instances: 1, settings: { Greeting: hi }\n", "HD1000"),
            ("YAML nested 50,000 deep", "service: " + new string('[', 50_000) + new string(']', 50_000) + "\n", "HD1017"),
        })
        {
            var refused = await Assert.ThrowsAsync<HeddleApiException>(() => api.DeployAsync(new DeploymentRequest(sample.Sha256, text, "evil.config.yaml")));
            Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
            Assert.Contains(code, string.Join("\n", refused.Errors));
            await StillStandingAsync(name);
        }

        // A package whose service.yaml is nested 50,000 deep: refused, and its blob not kept.
        using (var work = new TempDirectory("heddle-hostile-"))
        {
            var deep = Encoding.UTF8.GetBytes("name: " + new string('{', 50_000) + new string('}', 50_000) + "\n");
            var package = work.Combine("deep.hpkg");
            using (var file = File.Create(package))
            {
                PackageWriter.Write("hello", [new PackageSourceFile("service.yaml", false, () => new MemoryStream(deep))], file);
            }

            var refused = await Assert.ThrowsAsync<HeddleApiException>(() => api.UploadPackageAsync(package));
            Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
            Assert.Contains("HD1017", string.Join("\n", refused.Errors));
            await StillStandingAsync("a package nested 50,000 deep");
        }

        // An endless JSON body (64 MiB sent, more promised) to POST /v1/deployments: 413, and the controller keeps its memory.
        using (var http = config.Http(TimeSpan.FromSeconds(60)))
        {
            var answer = await new EndlessJson(64L << 20).PostAsync(http, "v1/deployments");
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, answer);
            Assert.True(RssMiB(controller) < 1024, $"the controller's RSS is {RssMiB(controller)} MiB after the endless body");
            await StillStandingAsync("an endless JSON body");
        }

        // Idle TCP connections held open from one address: 300 to the DNS port, 3,000 to the VIP (the balancer takes 1,000 per
        // client address and resets the rest), 1,000 to the API port.
        foreach (var (name, target, count) in new[]
        {
            ("300 idle TCP connections to the DNS port", dns, 300),
            ("3,000 idle TCP connections to the VIP", new IPEndPoint(IPAddress.Parse(vip), 8080), 3_000),
            ("1,000 idle TCP connections to the API port", new IPEndPoint(IPAddress.Parse(apiUrl.Host), apiUrl.Port), 1_000),
        })
        {
            var held = await HoldIdleAsync(target, count);
            try
            {
                await StillStandingAsync(name);
            }
            finally
            {
                held.ForEach(s => s.Dispose());
            }
        }

        Assert.Equal(8, checks.Count);
    }

    /// <summary>
    /// Tries <paramref name="count"/> connections from <see cref="Attacker"/> and sends nothing on them; returns those
    /// that were taken. A connection the target refuses or resets at once (the balancer's limit of connections per
    /// client address) is part of the answer to the attack, not a failure of it.
    /// </summary>
    private async Task<List<Socket>> HoldIdleAsync(IPEndPoint target, int count)
    {
        var sockets = new List<Socket>(count);
        var refused = 0;
        try
        {
            for (var i = 0; i < count; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(Attacker, 0));
                try
                {
                    await socket.ConnectAsync(target);
                    sockets.Add(socket);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused)
                {
                    socket.Dispose();
                    refused++;
                }
            }
        }
        catch
        {
            sockets.ForEach(s => s.Dispose());
            throw;
        }

        output.WriteLine($"{target}: {sockets.Count} of {count} idle connections held, {refused} refused or reset at once");
        Assert.True(sockets.Count > 0, $"{target} took none of {count} connections");
        return sockets;
    }

    private static long RssMiB(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
    }
}
