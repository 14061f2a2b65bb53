using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Heddle.LoadBalancer.Announcing.Bgp;

/// <summary>
/// One run of gobgpd: its command line, its output read to the end (each line to our logger at gobgpd's own level, the
/// last few kept for error messages; a pipe nobody reads would block it), and stopping it by signal.
/// </summary>
internal sealed partial class GobgpdProcess
{
    private const int TailLines = 20;
    private const int SigTerm = 15;
    private const int SigKill = 9;

    private readonly Process _process;
    private readonly ILogger _logger;
    private readonly Queue<string> _tail = new();
    private readonly Task _draining;

    private GobgpdProcess(Process process, ILogger logger)
    {
        _process = process;
        _logger = logger;
        Pid = process.Id;
        _draining = Task.WhenAll(DrainAsync(process.StandardOutput), DrainAsync(process.StandardError));
    }

    public int Pid { get; }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Its last lines of output.</summary>
    public string Tail
    {
        get
        {
            lock (_tail)
            {
                return _tail.Count == 0 ? "(nothing)" : string.Join('\n', _tail);
            }
        }
    }

    public static async Task<GobgpdProcess> StartAsync(ChildLauncher launcher, BgpOptions options, ILogger logger)
    {
        // No configuration file: everything comes over the API. pprof is off (it would listen on localhost:6060, and a
        // second gobgpd on the host would clash with it). Plain log lines (logrus' key=value) read better in our log.
        string[] gobgpd = [options.Gobgpd, "--api-hosts", $"unix://{options.ApiSocket}", "--pprof-disable", "--log-plain", "--log-level", "info"];
        string[] command = [.. options.CommandPrefix, .. gobgpd];
        try
        {
            return new GobgpdProcess(await launcher.StartAsync(command[0], command[1..]), logger);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new AnnouncerException($"cannot start {string.Join(' ', command)}: {e.Message}", e);
        }
    }

    public async Task WaitForExitAsync()
    {
        await _process.WaitForExitAsync();
        await _draining;
    }

    /// <summary>SIGKILL, at once.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _ = kill(Pid, SigKill);
        }
    }

    /// <summary>SIGTERM, then SIGKILL if it is still there after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (!_process.HasExited)
        {
            _ = kill(Pid, SigTerm);
            using var timeout = new CancellationTokenSource(grace);
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                LogKilled(_logger, Pid, grace.TotalSeconds);
                Kill();
            }
        }

        await WaitForExitAsync();
    }

    private async Task DrainAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (_tail)
            {
                _tail.Enqueue(line);
                if (_tail.Count > TailLines)
                {
                    _tail.Dequeue();
                }
            }

            LogLine(_logger, LevelOf(line), Pid, line);
        }
    }

    /// <summary>logrus' plain format says `level=warning`; anything else (Go's own panics, say) is a warning.</summary>
    private static LogLevel LevelOf(string line) =>
        line.Contains("level=debug", StringComparison.Ordinal) ? LogLevel.Debug
        : line.Contains("level=info", StringComparison.Ordinal) ? LogLevel.Information
        : line.Contains("level=error", StringComparison.Ordinal) || line.Contains("level=fatal", StringComparison.Ordinal) ? LogLevel.Error
        : LogLevel.Warning;

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    [LoggerMessage(Message = "gobgpd[{Pid}]: {Line}")]
    private static partial void LogLine(ILogger logger, LogLevel level, int pid, string line);

    [LoggerMessage(Level = LogLevel.Warning, Message = "gobgpd (pid {Pid}) did not stop within {Seconds} s of SIGTERM; killed")]
    private static partial void LogKilled(ILogger logger, int pid, double seconds);
}
