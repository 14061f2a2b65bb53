using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Heddle.Testing;
using Heddle.Testing.Browser;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests.Browser;

/// <summary>
/// The DevTools driver the dashboard's browser tests use, against a small HTTPS server of the test's own: chromium
/// trusts its certificate by SPKI pin only (as it will trust a controller's cluster-CA certificate), runs the page's
/// script, keeps its HttpOnly cookie, screenshots it, reports a refused connection clearly, fails fast when the
/// browser dies, and leaves no process behind.
/// </summary>
public sealed class ChromiumTests(ITestOutputHelper output)
{
    private const string Page = """
        <!doctype html>
        <html><head><title>Heddle browser test</title></head>
        <body><h1 id="status">loading</h1>
        <script>
          console.error('a deliberate console error');
          setTimeout(() => { document.getElementById('status').textContent = 'ready'; document.body.dataset.answer = String(6 * 7); }, 300);
        </script></body></html>
        """;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PinnedCertificate_PageScriptRuns_CookieKeepsItsFlags_ScreenshotSaved_NothingLeftRunning(bool signedByPrivateCa)
    {
        using var certificate = signedByPrivateCa ? CaSignedCertificate() : SelfSignedCertificate();
        await using var server = await StartServerAsync(certificate);
        var port = new Uri(server.Urls.Single()).Port;
        var pin = await Chromium.SpkiPinAsync("127.0.0.1", port);
        Assert.Equal(Chromium.SpkiPin(certificate), pin);

        var clock = Stopwatch.StartNew();
        var chromium = await Chromium.StartAsync(new ChromiumOptions { SpkiPins = [pin] });
        string profile = chromium.UserDataDirectory;
        try
        {
            var started = clock.Elapsed;
            await chromium.NavigateAsync($"https://127.0.0.1:{port}/");
            var navigated = clock.Elapsed;
            await chromium.WaitForAsync("document.getElementById('status').textContent === 'ready'", TimeSpan.FromSeconds(10), "the page's script to mark it ready");
            Assert.Equal(42, await chromium.EvaluateAsync<int>("Number(document.body.dataset.answer)"));
            Assert.Equal(1400, await chromium.EvaluateAsync<int>("window.innerWidth"));
            Assert.DoesNotContain("session=", await chromium.EvaluateAsync<string>("document.cookie")); // HttpOnly: not for scripts
            var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => chromium.EvaluateAsync<int>("null.answer"));
            Assert.Contains("TypeError", thrown.Message);
            var late = await Assert.ThrowsAsync<TimeoutException>(() => chromium.WaitForAsync("document.title === 'never'", TimeSpan.FromMilliseconds(300), "the title to change"));
            Assert.Contains("the title to change", late.Message);
            Assert.Contains($"page https://127.0.0.1:{port}/", late.Message);
            Assert.Contains("ready", late.Message);

            var cookie = Assert.Single(await chromium.CookiesAsync(), c => c.Name == "session");
            Assert.Equal(("s3cr3t", true, true, "Strict"), (cookie.Value, cookie.HttpOnly, cookie.Secure, cookie.SameSite));

            var screenshot = Path.Combine(AppContext.BaseDirectory, "browser-output", $"chromium-{(signedByPrivateCa ? "ca" : "self")}-signed.png");
            await chromium.ScreenshotAsync(screenshot);
            var total = clock.Elapsed;
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(screenshot)[..4]);
            Assert.Contains(chromium.ConsoleErrors, m => m.Contains("a deliberate console error", StringComparison.Ordinal));
            output.WriteLine($"screenshot: {screenshot}");
            output.WriteLine($"start {started.TotalMilliseconds:0} ms, +navigate {navigated.TotalMilliseconds:0} ms, +wait/evaluate/cookies/screenshot {total.TotalMilliseconds:0} ms");
            output.WriteLine($"console:\n{string.Join('\n', chromium.ConsoleMessages)}");
        }
        finally
        {
            await chromium.DisposeAsync();
        }

        Assert.Empty(Chromium.ProcessesUsing(profile));
        Assert.False(Directory.Exists(profile), $"the profile {profile} was left behind");
    }

    [Fact]
    public async Task AnotherKeysPin_DoesNotMakeTheCertificateTrusted()
    {
        using var certificate = SelfSignedCertificate();
        using var other = SelfSignedCertificate();
        await using var server = await StartServerAsync(certificate);
        var url = $"https://127.0.0.1:{new Uri(server.Urls.Single()).Port}/";

        await using var chromium = await Chromium.StartAsync(new ChromiumOptions { SpkiPins = [Chromium.SpkiPin(other)] });
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => chromium.NavigateAsync(url));
        output.WriteLine(error.Message);
        Assert.Contains("net::ERR_CERT_AUTHORITY_INVALID", error.Message);
    }

    [Fact]
    public async Task NavigatingToAClosedPort_ThrowsNamingTheUrlAndTheError()
    {
        var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();

        await using var chromium = await Chromium.StartAsync();
        var url = $"http://127.0.0.1:{port}/";
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => chromium.NavigateAsync(url));
        output.WriteLine(error.Message);
        Assert.Contains(url, error.Message);
        Assert.Contains("ERR_CONNECTION_REFUSED", error.Message);
    }

    [Fact]
    public async Task ABrowserThatDies_FailsTheCommandAtOnce_AndDisposeStillCleansUp()
    {
        var chromium = await Chromium.StartAsync();
        var profile = chromium.UserDataDirectory;
        try
        {
            using (var browser = Process.GetProcessById(chromium.ProcessId))
            {
                browser.Kill();
            }

            var clock = Stopwatch.StartNew();
            var error = await Poll.UntilAsync(
                async () => await Record.ExceptionAsync(() => chromium.EvaluateAsync<int>("1 + 1")), e => e is not null, TimeSpan.FromSeconds(10), "a command to the dead browser to fail");
            output.WriteLine($"{clock.Elapsed.TotalMilliseconds:0} ms: {error!.Message}");
            Assert.IsType<CdpException>(error);
            Assert.Contains("Runtime.evaluate", error.Message);
        }
        finally
        {
            await chromium.DisposeAsync();
        }

        Assert.Empty(Chromium.ProcessesUsing(profile));
    }

    [Fact]
    public async Task APageWhoseRendererCrashes_FailsItsCommandsAtOnce()
    {
        await using var chromium = await Chromium.StartAsync();
        await Record.ExceptionAsync(() => chromium.NavigateAsync("chrome://crash")); // chromium reports net::ERR_ABORTED, or the crash

        var error = await Poll.UntilAsync(
            async () => await Record.ExceptionAsync(() => chromium.EvaluateAsync<int>("1 + 1")), e => e is not null, TimeSpan.FromSeconds(10), "a command to the crashed page to fail");
        output.WriteLine(error!.Message);
        Assert.IsType<CdpException>(error);
        Assert.Contains("renderer crashed", error.Message);
    }

    private static async Task<WebApplication> StartServerAsync(X509Certificate2 certificate)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate)));
        var app = builder.Build();
        app.MapGet("/", (HttpContext context) =>
        {
            context.Response.Headers.SetCookie = "session=s3cr3t; Path=/; HttpOnly; Secure; SameSite=Strict";
            return Results.Content(Page, "text/html; charset=utf-8");
        });
        await app.StartAsync();
        return app;
    }

    private static X509Certificate2 SelfSignedCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return ServerRequest(key, "CN=heddle-browser-test").CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    /// <summary>A leaf issued by a CA of the test's own, as a controller's certificate is issued by the cluster CA.</summary>
    private static X509Certificate2 CaSignedCertificate()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=heddle-browser-test-ca", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-10), DateTimeOffset.UtcNow.AddDays(2));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var leaf = ServerRequest(key, "CN=heddle-browser-test").Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(16));
        return leaf.CopyWithPrivateKey(key);
    }

    private static CertificateRequest ServerRequest(ECDsa key, string subject)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        return request;
    }
}
