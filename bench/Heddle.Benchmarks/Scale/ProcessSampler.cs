using System.Globalization;

namespace Heddle.Benchmarks.Scale;

/// <summary>
/// A process's CPU (cores, from /proc/PID/stat every 500 ms) and resident memory (VmRSS), averaged and peaked over
/// phases; given several processes, their sums (three controllers, three etcd members).
/// </summary>
internal sealed class ProcessSampler : IAsyncDisposable
{
    private static readonly double TicksPerSecond = 100; // USER_HZ on Linux
    private readonly int[] _pids;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Lock _lock = new();
    private readonly List<(double Cores, long RssKiB, double Seconds)> _phase = [];

    public ProcessSampler(params int[] pids)
    {
        _pids = pids;
        _loop = RunAsync();
    }

    /// <summary>Starts a new phase: what <see cref="Take"/> sums up from now.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _phase.Clear();
        }
    }

    /// <summary>Average and peak cores, and peak RSS in MiB, since the last <see cref="Reset"/>.</summary>
    public (double AvgCores, double PeakCores, double PeakRssMiB) Take()
    {
        lock (_lock)
        {
            return _phase.Count == 0 ? (0, 0, 0) : (_phase.Average(p => p.Cores), _phase.Max(p => p.Cores), _phase.Max(p => p.RssKiB) / 1024.0);
        }
    }

    /// <summary>The CPU time the process used since the last <see cref="Reset"/>, in seconds (to the last 500 ms sample).</summary>
    public double CpuSeconds()
    {
        lock (_lock)
        {
            return _phase.Sum(p => p.Cores * p.Seconds);
        }
    }

    private async Task RunAsync()
    {
        var interval = TimeSpan.FromMilliseconds(500);
        var (lastTicks, lastTime) = (CpuTicks(), System.Diagnostics.Stopwatch.GetTimestamp());
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                var (ticks, time) = (CpuTicks(), System.Diagnostics.Stopwatch.GetTimestamp());
                if (ticks < 0)
                {
                    return;
                }

                var seconds = (time - lastTime) / (double)System.Diagnostics.Stopwatch.Frequency;
                var cores = (ticks - lastTicks) / TicksPerSecond / seconds;
                (lastTicks, lastTime) = (ticks, time);
                lock (_lock)
                {
                    _phase.Add((cores, RssKiB(), seconds));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The processes' CPU ticks summed; -1 once one of them has gone.</summary>
    private long CpuTicks()
    {
        long sum = 0;
        foreach (var pid in _pids)
        {
            var ticks = CpuTicks(pid);
            if (ticks < 0)
            {
                return -1;
            }

            sum += ticks;
        }

        return sum;
    }

    private long RssKiB() => _pids.Sum(RssKiB);

    private static long CpuTicks(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture); // utime, stime
        }
        catch (IOException)
        {
            return -1;
        }
    }

    private static long RssKiB(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
