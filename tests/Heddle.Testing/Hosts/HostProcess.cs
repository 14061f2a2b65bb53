using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Heddle.Testing.Hosts;

/// <summary>
/// A long-running program on a test host, its output kept (each line with the time it was read) for the test to wait
/// on and to print when it fails. Disposing stops it: SIGTERM, then SIGKILL after <see cref="StopGrace"/>.
/// </summary>
public sealed class HostProcess : IAsyncDisposable
{
    public const int SigKill = 9;
    public const int SigTerm = 15;

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly List<(DateTimeOffset Time, string Line)> _lines = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Task _reading;

    private HostProcess(TestHost host, string label, Process process)
    {
        Host = host;
        Label = label;
        _process = process;
        _reading = Task.WhenAll(ReadAsync(process.StandardOutput), ReadAsync(process.StandardError));
    }

    public TestHost Host { get; }

    public string Label { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static TimeSpan StopGrace { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Everything it printed so far, each line prefixed with the seconds since it started.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    internal static HostProcess Start(TestHost host, string label, string program, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo("/usr/bin/nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])[$"--net={host.NamespacePath}", "--", program, .. args])
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        return new HostProcess(host, label, Process.Start(start)!); // nsenter execs the program: the pid is the program's
    }

    private async Task ReadAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (_output)
            {
                _output.Append(FormattableString.Invariant($"[{_clock.Elapsed.TotalSeconds,7:0.000}] ")).AppendLine(line);
                _lines.Add((DateTimeOffset.UtcNow, line));
            }
        }
    }


    /// <summary>Waits until it has printed a line containing <paramref name="text"/>; fails with its output if it exits first or the deadline passes.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan deadline)
    {
        await Poll.UntilAsync(() => Output.Contains(text, StringComparison.Ordinal) || HasExited, deadline, $"{this} to print '{text}'");
        if (!Output.Contains(text, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{this} exited ({ExitCode}) before printing '{text}':\n{Output}");
        }
    }

    /// <summary>The lines printed after <paramref name="since"/> that contain <paramref name="text"/>, with when each was read.</summary>
    public IReadOnlyList<(DateTimeOffset Time, string Line)> LinesWith(string text, DateTimeOffset since)
    {
        lock (_output)
        {
            return [.. _lines.Where(l => l.Time >= since && l.Line.Contains(text, StringComparison.Ordinal))];
        }
    }

    [DllImport("libc", SetLastError = true, EntryPoint = "kill")]
    private static extern int SysKill(int pid, int signal);

    public static void Signal(int pid, int signal) => SysKill(pid, signal);

    /// <summary>SIGKILL, as a crash.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            Signal(_process.Id, SigKill);
        }
    }

    /// <summary>SIGTERM and wait for it to exit (SIGKILL after the grace).</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            Signal(_process.Id, SigTerm);
            using var grace = new CancellationTokenSource(StopGrace);
            try
            {
                await _process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                Kill();
            }
        }

        await _process.WaitForExitAsync();
        await _reading;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
    }

    public override string ToString() => $"{Label} on {Host.Name} (pid {Pid})";
}
