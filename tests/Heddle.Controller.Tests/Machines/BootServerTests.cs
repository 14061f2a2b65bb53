using System.Net;
using Heddle.Contracts.Api;
using Heddle.Controller.Boot;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Machines;

/// <summary>The boot service's HTTP side on loopback, with the controller's decisions faked: scripts, files, and what a controller that fails or a flood gets.</summary>
public sealed class BootServerTests : IAsyncLifetime
{
    private readonly TempDirectory _files = new("heddle-bootserver-");
    private readonly Dictionary<string, byte[]> _controllerBlobs = new(StringComparer.Ordinal);
    private int _fetches;
    private Func<string, CancellationToken, Task<BootDecision>> _decide = (mac, _) => Task.FromResult(Install(mac));
    private BootServer _server = null!;
    private HttpClient _http = null!;

    private static BootDecision Install(string mac) => new(BootAction.Install, mac, "m1", "rack-1", "hjoin.abc.def", ["https://10.0.0.1:7001/"], "machine m1 gets the host image");

    public async Task InitializeAsync()
    {
        File.WriteAllText(_files.Combine("kernel"), "KERNEL");
        File.WriteAllText(_files.Combine("initrd"), "INITRD");
        var images = new BootImages(_files.Combine("kernel"), _files.Combine("initrd"), _files.Combine("cache"), async (sha256, to, ct) =>
        {
            Interlocked.Increment(ref _fetches);
            await to.WriteAsync(_controllerBlobs[sha256], ct);
        });
        _server = await BootServer.StartAsync(IPAddress.Loopback, 0, images, "console=ttyS0", (mac, ct) => _decide(mac, ct), TextWriter.Null);
        _http = new HttpClient { BaseAddress = _server.BaseUrl };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _files.Dispose();
    }

    [Fact]
    public async Task Ipxe_AnInstall_IsAScriptPointingAtThisServersKernelAndInitrd()
    {
        var script = await _http.GetStringAsync("boot/ipxe?mac=52:54:00:12:34:56");

        Assert.StartsWith("#!ipxe\n", script);
        Assert.Contains($"kernel {_server.BaseUrl}boot/kernel console=ttyS0 heddle.controller=https://10.0.0.1:7001/ heddle.node=m1", script);
        Assert.Contains($"initrd {_server.BaseUrl}boot/initrd\n", script);
        Assert.Equal("KERNEL", await _http.GetStringAsync("boot/kernel"));
        Assert.Equal("INITRD", await _http.GetStringAsync("boot/initrd"));
    }

    [Fact]
    public async Task Ipxe_AnInstallOfAHostImage_PointsAtItsPartsFetchedOnceFromTheController()
    {
        var (kernel, initrd) = (Blob("HOST KERNEL"), Blob("HOST INITRD"));
        _decide = (mac, _) => Task.FromResult(Install(mac) with { Image = new BootImage("bookworm-1", kernel, initrd) });

        var script = await _http.GetStringAsync("boot/ipxe?mac=52:54:00:12:34:56");
        var again = await _http.GetStringAsync("boot/ipxe?mac=52:54:00:12:34:56");

        Assert.Contains($"kernel {_server.BaseUrl}boot/images/{kernel} console=ttyS0 heddle.controller=", script);
        Assert.Contains($"initrd {_server.BaseUrl}boot/images/{initrd}\n", script);
        Assert.Equal(script, again);
        Assert.Equal(2, _fetches); // one per part, not per boot
        Assert.Equal("HOST KERNEL", await _http.GetStringAsync($"boot/images/{kernel}"));
        Assert.Equal("HOST INITRD", await _http.GetStringAsync($"boot/images/{initrd}"));
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"boot/images/{Blob("never named")}")).StatusCode);
    }

    [Fact]
    public async Task Ipxe_AHostImagePartThatDoesNotMatchItsHash_IsNeverServed_AndTheCardIsToldToAskAgain()
    {
        var kernel = Blob("HOST KERNEL");
        _controllerBlobs[kernel] = "SOMETHING ELSE"u8.ToArray();
        _decide = (mac, _) => Task.FromResult(Install(mac) with { Image = new BootImage("bookworm-1", kernel, Blob("HOST INITRD")) });

        using var answer = await _http.GetAsync("boot/ipxe?mac=52:54:00:12:34:56");

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode); // iPXE runs no script that came with an error status
        Assert.EndsWith(AskAgain("52:54:00:12:34:56"), await answer.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"boot/images/{kernel}")).StatusCode);
    }

    [Fact]
    public async Task Ipxe_ABadMac_Is400AndAScriptThatExits_AndAControllerThatFails_IsAScriptThatAsksAgain()
    {
        _decide = (_, _) => throw new HeddleApiException(HttpStatusCode.BadRequest, ProblemTypes.InvalidRequest, "not a MAC", []);
        using var bad = await _http.GetAsync("boot/ipxe?mac=nope");
        _decide = (_, _) => throw new HttpRequestException("connection refused");
        using var down = await _http.GetAsync("boot/ipxe?mac=52:54:00:12:34:56");

        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.EndsWith("exit 1\n", await bad.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, down.StatusCode);
        var script = await down.Content.ReadAsStringAsync();
        Assert.Contains("the controller did not answer", script);
        Assert.EndsWith(AskAgain("52:54:00:12:34:56"), script);
    }

    [Fact]
    public async Task Ipxe_AMachineToldToTryLater_ChainsToItsScriptAgain_WhichIsAnsweredAfterThePause()
    {
        _decide = (mac, _) => Task.FromResult(new BootDecision(BootAction.TryLater, mac, "m1", "rack-1", null, [], "its node was heard from 1.0 s ago"));

        var script = await _http.GetStringAsync("boot/ipxe?mac=52:54:00:12:34:56");
        var evil = (await _http.GetStringAsync("boot/ipxe?mac=" + Uri.EscapeDataString("x$y z\nkernel evil"))).Split('\n');
        _decide = (mac, _) => Task.FromResult(Install(mac));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var again = await _http.GetStringAsync(new Uri(script.Split(' ')[^1].Trim()));
        var waited = clock.Elapsed;

        Assert.Equal($"#!ipxe\necho heddle: its node was heard from 1.0 s ago\n{AskAgain("52:54:00:12:34:56")}", script);
        Assert.Contains("heddle.join=hjoin.abc.def", again);
        Assert.True(waited >= TimeSpan.FromSeconds(IpxeScripts.RetryAfterSeconds) - TimeSpan.FromMilliseconds(50), $"answered after {waited.TotalSeconds:0.00} s");
        Assert.DoesNotContain("$", Assert.Single(evil, l => l.StartsWith("chain ", StringComparison.Ordinal))); // what the card sent cannot become a setting or a command
        Assert.DoesNotContain(evil, l => l.StartsWith("kernel", StringComparison.Ordinal));
    }

    private string AskAgain(string mac) => $"chain --replace --autofree {_server.BaseUrl}boot/ipxe?mac={Uri.EscapeDataString(mac)}&after={IpxeScripts.RetryAfterSeconds}\n";

    /// <summary>Content the fake controller holds, by its SHA-256.</summary>
    private string Blob(string text)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(text);
        var sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        _controllerBlobs[sha256] = bytes;
        return sha256;
    }

    [Fact]
    public async Task Ipxe_MoreQuestionsAtOnceThanTheLimit_AreToldAtOnceToAskAgain()
    {
        var release = new TaskCompletionSource<BootDecision>(TaskCreationOptions.RunContinuationsAsynchronously);
        var waiting = 0;
        _decide = (_, _) =>
        {
            Interlocked.Increment(ref waiting);
            return release.Task;
        };
        var held = Enumerable.Range(0, BootServer.MaxDecisionsAtOnce).Select(i => _http.GetAsync($"boot/ipxe?mac=52:54:00:00:00:{i:x2}")).ToList();
        await Poll.UntilAsync(() => Volatile.Read(ref waiting) == BootServer.MaxDecisionsAtOnce, TimeSpan.FromSeconds(10), "every slot taken");

        using var turnedAway = await _http.GetAsync("boot/ipxe?mac=52:54:00:00:00:99");

        var script = await turnedAway.Content.ReadAsStringAsync();
        Assert.Contains("busy", script);
        Assert.EndsWith(AskAgain("52:54:00:00:00:99"), script);
        release.SetResult(Install("52:54:00:00:00:00"));
        foreach (var response in await Task.WhenAll(held))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }
    }
}
