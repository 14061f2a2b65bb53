using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Threading.Channels;

namespace Heddle.Testing.Browser;

/// <summary>A cookie as the browser holds it, with the flags a test checks (SameSite is null when the server set none).</summary>
public sealed record BrowserCookie(string Name, string Value, string Domain, string Path, bool HttpOnly, bool Secure, string? SameSite);

/// <summary>
/// A headless chromium with one page, driven over the DevTools protocol for browser tests: navigate, evaluate
/// JavaScript, wait for the page to reach a state, screenshot, read cookies. Console messages, page exceptions and
/// browser log entries are collected in <see cref="ConsoleMessages"/> for the test to print. Disposing kills the
/// browser and every process it forked and removes its profile.
/// </summary>
public sealed class Chromium : IAsyncDisposable
{
    private readonly ChromiumProcess _process;
    private readonly CdpConnection _cdp;
    private readonly ChromiumOptions _options;
    private readonly List<string> _messages = [];
    private readonly TaskCompletionSource _pageGone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string _session = string.Empty;

    private Chromium(ChromiumProcess process, CdpConnection cdp, ChromiumOptions options)
    {
        _process = process;
        _cdp = cdp;
        _options = options;
        _cdp.EventReceived += Collect;
        _cdp.EventReceived += WatchPage;
    }

    /// <summary>The browser's process id (the launcher execs it, so this is chromium itself).</summary>
    public int ProcessId => _process.Id;

    /// <summary>The fresh profile folder, removed on dispose; every chromium process of this browser names it on its command line.</summary>
    public string UserDataDirectory => _process.UserDataDirectory;

    /// <summary>Every console call, page exception and browser log entry so far, each prefixed by its kind (console.error, exception, log.error, ...).</summary>
    public IReadOnlyList<string> ConsoleMessages
    {
        get
        {
            lock (_messages)
            {
                return [.. _messages];
            }
        }
    }

    /// <summary>The <see cref="ConsoleMessages"/> that are errors: what a test of a healthy page expects none of.</summary>
    public IReadOnlyList<string> ConsoleErrors =>
        [.. ConsoleMessages.Where(m => m.StartsWith("console.error", StringComparison.Ordinal) || m.StartsWith("console.assert", StringComparison.Ordinal)
            || m.StartsWith("exception", StringComparison.Ordinal) || m.StartsWith("log.error", StringComparison.Ordinal))];

    /// <summary>Starts chromium headless and opens a blank page to drive; fails with chromium's output if it does not come up.</summary>
    public static async Task<Chromium> StartAsync(ChromiumOptions? options = null)
    {
        options ??= new ChromiumOptions();
        var process = ChromiumProcess.Start(options);
        CdpConnection? cdp = null;
        try
        {
            var endpoint = await process.WaitForDevToolsAsync(options.StartDeadline);
            cdp = await CdpConnection.ConnectAsync(endpoint, options.StartDeadline);
            var chromium = new Chromium(process, cdp, options);
            process.Exited += () => cdp.Abort($"chromium (pid {process.Id}) exited; its last output:\n{process.RecentOutput}");
            if (process.HasExited)
            {
                cdp.Abort($"chromium (pid {process.Id}) exited while starting; its last output:\n{process.RecentOutput}");
            }

            await chromium.OpenPageAsync();
            return chromium;
        }
        catch
        {
            if (cdp is not null)
            {
                await cdp.DisposeAsync();
            }

            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The base64 SHA-256 of the SubjectPublicKeyInfo of the certificate the TLS server at host:port presents (any
    /// certificate is accepted for this look), in the form --ignore-certificate-errors-spki-list (<see cref="ChromiumOptions.SpkiPins"/>) takes.
    /// </summary>
    public static async Task<string> SpkiPinAsync(string host, int port)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(host, port, timeout.Token);
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        var accept = new SslClientAuthenticationOptions { TargetHost = host, RemoteCertificateValidationCallback = (_, _, _, _) => true };
        await tls.AuthenticateAsClientAsync(accept, timeout.Token);
        var presented = tls.RemoteCertificate ?? throw new InvalidOperationException($"{host}:{port} presented no certificate");
        using var leaf = presented as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        return SpkiPin(leaf);
    }

    /// <summary>The SPKI pin of <paramref name="certificate"/>, as <see cref="SpkiPinAsync"/> computes it for a server's.</summary>
    public static string SpkiPin(X509Certificate2 certificate) =>
        Convert.ToBase64String(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));

    /// <summary>The ids of the live processes of the chromium whose profile is <paramref name="userDataDirectory"/> (none, after dispose).</summary>
    public static IReadOnlyList<int> ProcessesUsing(string userDataDirectory) => ChromiumProcess.ProcessesUsing(userDataDirectory);

    /// <summary>Sends a DevTools command to the page (for what the methods here do not cover) and returns its result.</summary>
    public Task<JsonElement> SendAsync(string method, object? parameters = null) => _cdp.SendAsync(method, parameters, _session);

    /// <summary>Loads <paramref name="url"/> and waits for its load event; throws with chromium's errorText (net::ERR_...) if it cannot be loaded.</summary>
    public async Task NavigateAsync(string url)
    {
        var loads = Channel.CreateUnbounded<string>();
        void OnLoad(CdpEvent e)
        {
            if (e.SessionId == _session && e.Method == "Page.lifecycleEvent" && e.Params.GetProperty("name").GetString() == "load")
            {
                loads.Writer.TryWrite(e.Params.GetProperty("loaderId").GetString() ?? string.Empty);
            }
        }

        _cdp.EventReceived += OnLoad;
        try
        {
            var result = await SendAsync("Page.navigate", new { url });
            if (result.TryGetProperty("errorText", out var error) && error.GetString() is { Length: > 0 } text)
            {
                throw new InvalidOperationException($"navigating to {url} failed: {text}");
            }

            if (result.TryGetProperty("loaderId", out var loader))
            {
                await WaitForLoadAsync(loads.Reader, loader.GetString()!, url); // no loaderId: a same-document navigation, done already
            }
        }
        finally
        {
            _cdp.EventReceived -= OnLoad;
        }
    }

    /// <summary>
    /// Evaluates <paramref name="expression"/> in the page (awaiting it if it is a promise) and returns its value as
    /// JSON deserialised to <typeparamref name="T"/> (default for undefined); throws with the JavaScript exception's text if it throws.
    /// </summary>
    public Task<T?> EvaluateAsync<T>(string expression) => EvaluateAsync<T>(expression, CdpConnection.DefaultCommandDeadline);

    /// <summary>
    /// Polls <paramref name="jsPredicate"/> (a JavaScript expression, possibly a promise) with <see cref="Poll"/> until it is truthy;
    /// after <paramref name="deadline"/> throws naming <paramref name="what"/>, with the page's URL and the start of its text.
    /// </summary>
    public async Task WaitForAsync(string jsPredicate, TimeSpan deadline, string what)
    {
        var clock = Stopwatch.StartNew();
        string? lastError = null;
        Exception? fatal = null;
        try
        {
            await Poll.UntilAsync(async () =>
            {
                try
                {
                    var left = deadline - clock.Elapsed;
                    return await EvaluateAsync<bool>($"Promise.resolve(({jsPredicate})).then(v => !!v)", left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1));
                }
                catch (Exception e) when (e is InvalidOperationException or CdpException && _cdp.ClosedReason is null && !_pageGone.Task.IsCompleted)
                {
                    lastError = e.Message; // e.g. the page is between documents, or the predicate reads what is not there yet
                    return false;
                }
                catch (Exception e)
                {
                    fatal = e; // the browser or the page is gone: no use waiting out the deadline
                    return true;
                }
            }, done => done, deadline, what);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{what} did not happen within {deadline.TotalSeconds:0.#} s{(lastError is null ? string.Empty : $"; last error: {lastError}")}\n{await DescribePageAsync()}");
        }

        if (fatal is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(fatal);
        }
    }

    /// <summary>Saves a PNG of the whole page (beyond the viewport too) at <paramref name="path"/>, creating its folder.</summary>
    public async Task ScreenshotAsync(string path)
    {
        var result = await SendAsync("Page.captureScreenshot", new { format = "png", captureBeyondViewport = true });
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        await File.WriteAllBytesAsync(path, Convert.FromBase64String(result.GetProperty("data").GetString()!));
    }

    /// <summary>The cookies the browser would send to the page's current URL.</summary>
    public async Task<IReadOnlyList<BrowserCookie>> CookiesAsync()
    {
        var result = await SendAsync("Network.getCookies");
        return [.. result.GetProperty("cookies").EnumerateArray().Select(c => new BrowserCookie(
            c.GetProperty("name").GetString()!, c.GetProperty("value").GetString()!, c.GetProperty("domain").GetString()!, c.GetProperty("path").GetString()!,
            c.GetProperty("httpOnly").GetBoolean(), c.GetProperty("secure").GetBoolean(), c.TryGetProperty("sameSite", out var s) ? s.GetString() : null))];
    }

    /// <summary>Closes the DevTools socket, kills chromium and every process it forked, and removes its profile.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await _cdp.DisposeAsync();
        }
        finally
        {
            await _process.DisposeAsync();
        }
    }

    private async Task<T?> EvaluateAsync<T>(string expression, TimeSpan deadline)
    {
        var result = await _cdp.SendAsync("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true }, _session, deadline);
        if (result.TryGetProperty("exceptionDetails", out var details))
        {
            throw new InvalidOperationException($"JavaScript `{Shorten(expression, 200)}` threw: {CdpText.Exception(details)}");
        }

        var value = result.GetProperty("result");
        return value.TryGetProperty("value", out var json) ? json.Deserialize<T>() : default;
    }

    private async Task OpenPageAsync()
    {
        var target = await _cdp.SendAsync("Target.createTarget", new { url = "about:blank" });
        var attached = await _cdp.SendAsync("Target.attachToTarget", new { targetId = target.GetProperty("targetId").GetString(), flatten = true });
        _session = attached.GetProperty("sessionId").GetString()!;
        foreach (var domain in (string[])["Page.enable", "Runtime.enable", "Log.enable", "Network.enable"])
        {
            await SendAsync(domain);
        }

        await SendAsync("Page.setLifecycleEventsEnabled", new { enabled = true });
    }

    private async Task WaitForLoadAsync(ChannelReader<string> loads, string loaderId, string url)
    {
        using var timeout = new CancellationTokenSource(_options.NavigationDeadline);
        try
        {
            while (true)
            {
                var next = loads.ReadAsync(timeout.Token).AsTask();
                if (await Task.WhenAny(next, _cdp.Closed, _pageGone.Task) != next)
                {
                    throw new CdpException($"{url} did not load: {_cdp.ClosedReason ?? "the page is gone (its renderer crashed or it was closed)"}");
                }

                if (await next == loaderId)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{url} did not reach its load event within {_options.NavigationDeadline.TotalSeconds:0.#} s\n{await DescribePageAsync()}");
        }
    }

    private async Task<string> DescribePageAsync()
    {
        try
        {
            var location = await EvaluateAsync<string>("location.href");
            var text = await EvaluateAsync<string>("document.body ? document.body.innerText : '(no body)'");
            return $"page {location}; its text:\n{Shorten(text ?? string.Empty, 2000)}";
        }
        catch (Exception e) when (e is InvalidOperationException or CdpException)
        {
            return $"(the page could not be read: {e.Message})";
        }
    }

    private void Collect(CdpEvent e)
    {
        if (e.SessionId != _session || CdpText.Describe(e) is not { } message)
        {
            return;
        }

        lock (_messages)
        {
            _messages.Add(message);
        }
    }

    /// <summary>A crashed renderer or a closed page never answers: fail its commands and its navigation at once.</summary>
    private void WatchPage(CdpEvent e)
    {
        var gone = e.Method switch
        {
            "Inspector.targetCrashed" when e.SessionId == _session => "the page's renderer crashed",
            "Target.detachedFromTarget" when e.Params.GetProperty("sessionId").GetString() == _session => "the page was closed (detached from its target)",
            _ => null,
        };
        if (gone is not null && _session.Length > 0)
        {
            _cdp.FailSession(_session, gone);
            _pageGone.TrySetResult();
        }
    }

    private static string Shorten(string text, int length) => text.Length <= length ? text : text[..length] + "…";
}
