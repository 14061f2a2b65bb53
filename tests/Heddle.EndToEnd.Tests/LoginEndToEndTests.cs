using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Heddle.Testing;
using Xunit;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// `heddle login` against a real `heddle controller` process: with the CA file, with the CA hash the controller
/// printed, and refused (nothing written) for a wrong hash or a wrong token; and commands against a controller that
/// never answers fail within --request-timeout, naming every controller they tried.
/// </summary>
public sealed class LoginEndToEndTests : IDisposable
{
    private readonly TempDirectory _home = new("heddle-login-home-");

    private Dictionary<string, string> Environment => new() { ["HEDDLE_HOME"] = _home.Path, ["HEDDLE_TOKEN"] = string.Empty };

    private string ConfigPath => _home.Combine("config.json");

    public void Dispose() => _home.Dispose();

    [Fact]
    public async Task Login_WithCaFileOrTheRightHash_WritesAWorkingConfiguration_AWrongHashOrTokenWritesNothing()
    {
        // On every address, naming 127.0.0.2 besides: reached at 127.0.0.3 its certificate does not name the host.
        await using var controller = await ControllerProcess.StartAsync("--listen", "0.0.0.0", "--tls-name", "heddle-login.example", "--tls-name", "127.0.0.2");
        var url = $"https://127.0.0.1:{controller.Port}/";
        var unnamed = Heddle.Run(Environment, "login", $"https://127.0.0.3:{controller.Port}/", "--token", controller.Token, "--ca-file", Path.Combine(controller.State, "ca.crt"));
        Assert.True(unnamed.ExitCode == 1, unnamed.ToString());
        Assert.Contains("TLS name mismatch", unnamed.Stderr);
        Assert.Contains("--tls-name 127.0.0.3", unnamed.Stderr);
        Assert.False(File.Exists(ConfigPath), "a login to an unnamed address wrote the client configuration");

        var wrongHash = Heddle.Run(Environment, "login", url, "--token", controller.Token, "--ca-hash", "sha256:" + new string('0', 64));
        Assert.True(wrongHash.ExitCode == 1, wrongHash.ToString());
        Assert.Contains("differs from the sha256:0000", wrongHash.Stderr);
        Assert.Contains("man in the middle", wrongHash.Stderr);
        Assert.Contains(controller.CaHash, wrongHash.Stderr);
        Assert.False(File.Exists(ConfigPath), "a refused login wrote the client configuration");

        var wrongToken = Heddle.Run(Environment, "login", url, "--token", new string('a', 40), "--ca-hash", controller.CaHash);
        Assert.True(wrongToken.ExitCode == 1, wrongToken.ToString());
        Assert.Contains("refused the token", wrongToken.Stderr);
        Assert.False(File.Exists(ConfigPath), "a login with a wrong token wrote the client configuration");

        var byHash = Heddle.Run(Environment, "login", url, "--token", controller.Token, "--ca-hash", controller.CaHash);
        Assert.True(byHash.ExitCode == 0, byHash.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ConfigPath));
        var info = Heddle.Run(Environment, "info");
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.Contains(controller.CaHash, info.Stdout);
        File.Delete(ConfigPath);

        var byFile = Heddle.Run(Environment, "login", url, "--token", controller.Token, "--ca-file", Path.Combine(controller.State, "ca.crt"));
        Assert.True(byFile.ExitCode == 0, byFile.ToString());
        using (var config = JsonDocument.Parse(File.ReadAllText(ConfigPath)))
        {
            Assert.Equal(url, config.RootElement.GetProperty("apiUrl").GetString());
            Assert.Equal([url], config.RootElement.GetProperty("apiUrls").EnumerateArray().Select(u => u.GetString()));
            Assert.Equal(controller.Token, config.RootElement.GetProperty("token").GetString());
            Assert.StartsWith("-----BEGIN CERTIFICATE-----", config.RootElement.GetProperty("ca").GetString());
        }

        Assert.Equal(0, Heddle.Run(Environment, "nodes").ExitCode);

        // Reached at the address given with --tls-name, and at two controller URLs at once (both this one).
        var named = Heddle.Run(Environment, "login", $"https://127.0.0.2:{controller.Port}/,https://localhost:{controller.Port}/", "--token", controller.Token, "--ca-hash", controller.CaHash);
        Assert.True(named.ExitCode == 0, named.ToString());
        using (var config = JsonDocument.Parse(File.ReadAllText(ConfigPath)))
        {
            Assert.Equal(2, config.RootElement.GetProperty("apiUrls").GetArrayLength());
        }
    }

    [Fact]
    public void Command_AgainstControllersThatNeverAnswer_FailsWithinTheTimeout_NamingEach()
    {
        // One accepts and never says a word; the other never accepts (its backlog of 1 is held by a connection of ours).
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepted = new List<Socket>();
        var accepting = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var socket = await silent.AcceptSocketAsync();
                    lock (accepted)
                    {
                        accepted.Add(socket);
                    }
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        });
        using var deaf = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        deaf.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        deaf.Listen(1);
        var first = $"https://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/";
        var second = $"https://127.0.0.1:{((IPEndPoint)deaf.LocalEndPoint!).Port}/";
        File.WriteAllText(ConfigPath, JsonSerializer.Serialize(new { apiUrl = first, apiUrls = new[] { first, second }, token = new string('a', 40), ca = TestCa() }));

        var clock = Stopwatch.StartNew();
        var result = Heddle.Run(Environment, "--request-timeout", "2s", "info");
        clock.Stop();
        silent.Stop();
        lock (accepted)
        {
            accepted.ForEach(s => s.Dispose());
        }

        Assert.True(result.ExitCode == 1, result.ToString());
        // Each controller was given its own 2 s: one after the other, or overlapping when a read asks the second while
        // the first's handshake is slow (a hedged read, on a loaded machine), so no lower bound on the total.
        // Both took the TCP connection and never answered TLS: the request's 2 s and the connection's 2 s end together, and
        // which is reported first is a race (a loaded CI machine reported "no connection" for the second twice in a row).
        Assert.Matches($@"cannot reach the controller at {Regex.Escape(first)} \(no (answer|connection) within 2 s\)", result.Stderr);
        Assert.Matches($@"tried {Regex.Escape(second)} \(no (answer|connection) within 2 s\)", result.Stderr);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}: {result}");
    }

    [Fact]
    public async Task Read_WhenTheFirstControllerNeverAnswersItsSyn_IsAnsweredByTheNextAfterItsHeadStart_NotTheTcpTimeout()
    {
        await using var controller = await ControllerProcess.StartAsync();
        // A listener whose accept queue is full: the kernel drops every further SYN without a word, as a host gone silent does.
        using var deaf = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        deaf.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        deaf.Listen(1);
        var fillers = new List<Socket>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                using var connect = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                try
                {
                    await filler.ConnectAsync(deaf.LocalEndPoint!, connect.Token);
                }
                catch (OperationCanceledException)
                {
                    break; // the queue is full
                }
            }

            var silentUrl = new Uri($"https://127.0.0.1:{((IPEndPoint)deaf.LocalEndPoint!).Port}/");
            var liveUrl = new Uri($"https://127.0.0.1:{controller.Port}/");
            using var ca = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(controller.State, "ca.crt")));
            using (var warm = new global::Heddle.Contracts.Api.HeddleApiClient([liveUrl, silentUrl], controller.Token, ca, global::Heddle.Contracts.Api.ApiTimeouts.Default, checkNames: false))
            {
                await warm.InfoAsync(); // what is measured below is the wait, not this process's first TLS handshake
            }

            // The TCP timeout is made long (10 s) so that waiting it out cannot pass for the head start on a loaded machine:
            // the live controller must be asked 250 ms after the silent one, long before the silent one's SYN times out.
            var timeouts = global::Heddle.Contracts.Api.ApiTimeouts.Default with { TcpConnect = TimeSpan.FromSeconds(10) };
            var moved = new List<Uri>();
            using var client = new global::Heddle.Contracts.Api.HeddleApiClient([silentUrl, liveUrl], controller.Token, ca, timeouts, checkNames: false, moved.Add);
            var clock = Stopwatch.StartNew();
            var info = await client.InfoAsync();
            clock.Stop();
            Assert.NotNull(info);
            Assert.Equal([liveUrl], moved);
            Assert.Equal(liveUrl, client.CurrentUrl);
            Assert.True(clock.Elapsed < timeouts.TcpConnect / 2, $"answered in {clock.Elapsed.TotalMilliseconds:0} ms: the silent controller's TCP timeout was waited out");
            Assert.True(clock.Elapsed >= timeouts.NextAfter - TimeSpan.FromMilliseconds(10), $"answered in {clock.Elapsed.TotalMilliseconds:0} ms: the first controller had no head start");

            // The next read goes to the controller that answered first: it stays the current one, and nothing moves.
            await client.InfoAsync();
            Assert.Equal(liveUrl, client.CurrentUrl);
            Assert.Equal([liveUrl], moved);
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    /// <summary>A CA certificate of no cluster: the config needs one for https URLs; the silent controllers never get as far as showing theirs.</summary>
    private static string TestCa()
    {
        using var key = System.Security.Cryptography.ECDsa.Create();
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=test CA", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new System.Security.Cryptography.X509Certificates.X509BasicConstraintsExtension(true, false, 0, true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return certificate.ExportCertificatePem();
    }

    /// <summary>A `heddle controller` process on loopback ports the OS picks, with a state folder of its own; killed (by its id) and removed on dispose.</summary>
    private sealed class ControllerProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly TempDirectory _state;
        private readonly List<string> _lines = [];

        private ControllerProcess(Process process, TempDirectory state)
        {
            _process = process;
            _state = state;
        }

        public string State => _state.Combine("controller");

        public int Port { get; private set; }

        public string CaHash { get; private set; } = string.Empty;

        public string Token => File.ReadAllText(Path.Combine(State, "api-token")).Trim();

        public static async Task<ControllerProcess> StartAsync(params string[] extra)
        {
            var state = new TempDirectory("heddle-login-");
            var start = new ProcessStartInfo(Heddle.Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in (string[])["controller", "--state", state.Combine("controller"), "--no-dns", "--no-lb", "--uid-range", "310000-310999", .. extra])
            {
                start.ArgumentList.Add(arg);
            }

            var controller = new ControllerProcess(Process.Start(start)!, state);
            controller._process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (controller._lines)
                    {
                        controller._lines.Add(e.Data);
                    }
                }
            };
            controller._process.ErrorDataReceived += controller.OnError;
            controller._process.BeginOutputReadLine();
            controller._process.BeginErrorReadLine();
            var users = await Poll.UntilAsync(() => Task.FromResult(controller.Line("users: heddle login ")), l => l is not null || controller._process.HasExited,
                TimeSpan.FromSeconds(60), "the controller printing how users log in");
            Assert.True(users is not null, $"the controller exited: {string.Join('\n', controller._lines)}");
            var words = users!.Split(' ');
            controller.Port = new Uri(words[3]).Port;
            controller.CaHash = words[^1];
            Assert.Contains($"hash {controller.CaHash}", controller.Line("admin token in ") ?? string.Empty);
            return controller;
        }

        private void OnError(object sender, DataReceivedEventArgs e)
        {
            if (e.Data is not null)
            {
                lock (_lines)
                {
                    _lines.Add(e.Data);
                }
            }
        }

        private string? Line(string start)
        {
            lock (_lines)
            {
                return _lines.FirstOrDefault(l => l.StartsWith(start, StringComparison.Ordinal));
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync();
            _process.Dispose();
            _state.Dispose();
        }
    }
}
