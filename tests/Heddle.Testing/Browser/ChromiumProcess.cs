using System.Diagnostics;

namespace Heddle.Testing.Browser;

/// <summary>How <see cref="Chromium.StartAsync"/> starts the browser.</summary>
public sealed record ChromiumOptions
{
    /// <summary>The program; Debian's launcher script, which execs /usr/lib/chromium/chromium (so its pid is the browser's).</summary>
    public string Executable { get; init; } = "/usr/bin/chromium";

    /// <summary>The window (and so the viewport and screenshot) width in CSS pixels.</summary>
    public int WindowWidth { get; init; } = 1400;

    /// <summary>The window height in CSS pixels.</summary>
    public int WindowHeight { get; init; } = 1000;

    /// <summary>
    /// Base64 SHA-256 pins of server certificates' SubjectPublicKeyInfo (see <see cref="Chromium.SpkiPinAsync"/>) that
    /// chromium accepts although it does not trust their issuer: how a test trusts a controller's private cluster CA
    /// without trusting every certificate.
    /// </summary>
    public IReadOnlyList<string> SpkiPins { get; init; } = [];

    /// <summary>How long starting (until the DevTools endpoint answers) may take.</summary>
    public TimeSpan StartDeadline { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a navigation may take to reach its load event.</summary>
    public TimeSpan NavigationDeadline { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>More command-line flags, for what the options above do not cover.</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];
}

/// <summary>
/// The chromium process and its profile folder: started headless with DevTools on a port it picks itself, its output
/// kept (the last lines, for error messages), and killed with every child it forked (zygotes, renderers, GPU and
/// utility processes) when disposed, the profile folder removed.
/// </summary>
internal sealed class ChromiumProcess : IAsyncDisposable
{
    private const int KeptLines = 40;
    private readonly Process _process;
    private readonly TempDirectory _profile;
    private readonly Queue<string> _output = new();

    private ChromiumProcess(Process process, TempDirectory profile)
    {
        _process = process;
        _profile = profile;
    }

    public int Id => _process.Id;

    public string UserDataDirectory => _profile.Path;

    public bool HasExited => _process.HasExited;

    /// <summary>The last lines chromium printed (D-Bus complaints left out: there is no bus here, and it says so often).</summary>
    public string RecentOutput
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output);
            }
        }
    }

    /// <summary>Raised once when chromium exits, whoever ended it.</summary>
    public event Action? Exited;

    public static ChromiumProcess Start(ChromiumOptions options)
    {
        var profile = new TempDirectory("heddle-chromium-");
        var start = new ProcessStartInfo(options.Executable) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var argument in Arguments(options, profile.Path))
        {
            start.ArgumentList.Add(argument);
        }

        // Chromium starts crashpad handlers that daemonise (parent 1, a session of their own: outside the process tree)
        // with their database under $XDG_CONFIG_HOME, ~/.config by default. Put it in the profile: nothing is written
        // outside it, and the handlers name the profile on their command line, so the sweep on dispose finds them.
        // (--disable-crashpad-for-testing would avoid them, but with it chromium 156 never answers Page.navigate.)
        start.Environment["XDG_CONFIG_HOME"] = profile.Combine("xdg-config");
        start.Environment["GSETTINGS_BACKEND"] = "memory"; // else GLib writes ~/.cache/dconf/user on every start

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        try
        {
            var chromium = new ChromiumProcess(process, profile);
            chromium.Launch();
            return chromium;
        }
        catch
        {
            process.Dispose();
            profile.Dispose();
            throw;
        }
    }

    /// <summary>The command line: headless, no sandbox (tests run as root), a fresh profile, DevTools on a port of chromium's choosing.</summary>
    public static IReadOnlyList<string> Arguments(ChromiumOptions options, string userDataDirectory)
    {
        List<string> arguments =
        [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-dev-shm-usage", "--disable-background-networking", "--mute-audio",
            $"--user-data-dir={userDataDirectory}", "--remote-debugging-port=0",
            $"--window-size={options.WindowWidth},{options.WindowHeight}",
        ];
        if (options.SpkiPins.Count > 0)
        {
            arguments.Add($"--ignore-certificate-errors-spki-list={string.Join(',', options.SpkiPins)}");
        }

        return [.. arguments, .. options.ExtraArguments, "about:blank"];
    }

    /// <summary>
    /// Waits for the DevToolsActivePort file chromium writes in its profile (the port it bound, then the browser
    /// target's path) and returns the browser's WebSocket URL; fails with chromium's output if it exits first.
    /// </summary>
    public async Task<Uri> WaitForDevToolsAsync(TimeSpan deadline)
    {
        var file = _profile.Combine("DevToolsActivePort");
        try
        {
            var endpoint = await Poll.UntilAsync(async () =>
            {
                var lines = File.Exists(file) ? await File.ReadAllLinesAsync(file) : [];
                return lines.Length >= 2 && int.TryParse(lines[0], out var port) && port > 0 && lines[1].StartsWith('/')
                    ? new Uri($"ws://127.0.0.1:{port}{lines[1]}")
                    : null;
            }, uri => uri is not null || _process.HasExited, deadline, "chromium's DevToolsActivePort");
            return endpoint ?? throw new InvalidOperationException($"chromium exited ({_process.ExitCode}) before its DevTools endpoint was up; its output:\n{RecentOutput}");
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"chromium (pid {Id}) wrote no DevToolsActivePort within {deadline.TotalSeconds:0.#} s; its output:\n{RecentOutput}");
        }
    }

    /// <summary>
    /// The ids of the live processes whose command line names <paramref name="userDataDirectory"/>: every chromium
    /// process of that profile (browser, zygotes, renderers, GPU and utility processes: --user-data-dir; crashpad
    /// handlers: their --database under it). Zombies (dead, not yet reaped) have no command line and are not counted.
    /// </summary>
    public static IReadOnlyList<int> ProcessesUsing(string userDataDirectory)
    {
        var found = new List<int>();
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(folder), out var pid) && CommandLine(folder).Contains(userDataDirectory, StringComparison.Ordinal))
            {
                found.Add(pid);
            }
        }

        return found;
    }

    /// <summary>Kills the browser and its whole process tree, then any process of its profile that escaped the tree, and removes the profile.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await Poll.UntilAsync(KillStragglers, TimeSpan.FromSeconds(15), $"every chromium process of {UserDataDirectory} to exit");
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await _process.WaitForExitAsync(grace.Token);
        }
        finally
        {
            _process.Dispose();
            _profile.Dispose();
        }
    }

    private void Launch()
    {
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.Exited += (_, _) => Exited?.Invoke();
        _process.Start();
        _process.StandardInput.Close();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private bool KillStragglers()
    {
        var left = ProcessesUsing(UserDataDirectory);
        foreach (var pid in left)
        {
            Hosts.HostProcess.Signal(pid, Hosts.HostProcess.SigKill);
        }

        return left.Count == 0;
    }

    private static string CommandLine(string procFolder)
    {
        try
        {
            return File.ReadAllText(Path.Combine(procFolder, "cmdline")).Replace('\0', ' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return string.Empty; // it exited while we looked
        }
    }

    private void Keep(string? line)
    {
        if (line is null || line.Contains("dbus/", StringComparison.Ordinal))
        {
            return;
        }

        lock (_output)
        {
            _output.Enqueue(line);
            while (_output.Count > KeptLines)
            {
                _output.Dequeue();
            }
        }
    }
}
