using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Heddle.Controller.Boot;

/// <summary>
/// Runs dnsmasq in the foreground with a configuration file, its log lines passed on, and starts it again (with a
/// backoff, 1 s doubling to 30 s, back to 1 s after a minute up) whenever it exits while it should run. Disposing stops
/// it: SIGTERM, then SIGKILL after 5 s.
/// </summary>
public sealed class DnsmasqSupervisor : IAsyncDisposable
{
    private readonly string _program;
    private readonly string _configFile;
    private readonly TextWriter _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _firstStart = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _loop;
    private Process? _process;

    private DnsmasqSupervisor(string program, string configFile, TextWriter log)
    {
        _program = program;
        _configFile = configFile;
        _log = log;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Starts dnsmasq; completes once the first one has started (or failed to start: then it throws).</summary>
    public static async Task<DnsmasqSupervisor> StartAsync(string program, string configFile, TextWriter log)
    {
        var supervisor = new DnsmasqSupervisor(program, configFile, log);
        try
        {
            await supervisor._firstStart.Task;
        }
        catch
        {
            await supervisor.DisposeAsync();
            throw;
        }

        return supervisor;
    }

    /// <summary>The running dnsmasq's pid, or null between runs.</summary>
    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    private async Task RunAsync()
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!_stop.IsCancellationRequested)
        {
            var start = new ProcessStartInfo(_program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { "--keep-in-foreground", $"--conf-file={_configFile}", "--log-facility=-" })
            {
                start.ArgumentList.Add(arg);
            }

            var began = Stopwatch.StartNew();
            try
            {
                _process = Process.Start(start)!;
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                _firstStart.TrySetException(new InvalidOperationException($"cannot start {_program}: {e.Message} (Debian: apt-get install dnsmasq-base)", e));
                return;
            }

            _firstStart.TrySetResult();
            var reading = Task.WhenAll(PassOnAsync(_process.StandardOutput), PassOnAsync(_process.StandardError));
            try
            {
                await _process.WaitForExitAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            await reading;
            backoff = began.Elapsed > TimeSpan.FromMinutes(1) ? TimeSpan.FromSeconds(1) : backoff;
            _log.WriteLine($"heddle boot: dnsmasq exited ({_process.ExitCode}); starting it again in {backoff.TotalSeconds:0} s");
            try
            {
                await Task.Delay(backoff, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            backoff = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(30).Ticks, backoff.Ticks * 2));
        }
    }

    private async Task PassOnAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            _log.WriteLine(line);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        if (_process is { HasExited: false } process)
        {
            _ = kill(process.Id, 15);
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }
        }

        _process?.Dispose();
        _stop.Dispose();
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
