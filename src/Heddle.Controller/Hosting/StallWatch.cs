using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Hosting;

/// <summary>
/// Says when the controller process itself stalled: a thread of its own hands the thread pool a trivial work item every
/// half second and logs a warning when one waited longer than <see cref="Threshold"/> to run, with how much of that the
/// process spent paused for garbage collection and how busy the pool was. Every heartbeat, report and API call runs on
/// that pool, so a stall here is a stall of all of them: an operator reading "an API call took 10 s" learns whether the
/// controller was starved (CPU, GC, blocked threads) or the call itself was slow (<see cref="SlowRequests"/>).
/// </summary>
public sealed partial class StallWatch : IDisposable
{
    /// <summary>How late a queued work item may run before it is told (the controller's).</summary>
    public static readonly TimeSpan Threshold = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(500);

    private readonly ILogger _logger;
    private readonly Action<Action> _queue;
    private readonly TimeSpan _threshold;
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private bool _late;

    /// <summary>Whether a work item is late now (waited past the threshold and has not yet run).</summary>
    internal bool Late => Volatile.Read(ref _late);

    public StallWatch(ILogger<StallWatch> logger)
        : this(logger, static item => ThreadPool.UnsafeQueueUserWorkItem(static run => run(), item, preferLocal: false), Threshold)
    {
    }

    /// <param name="queue">Runs a work item where the controller's work runs (the thread pool; a test: somewhere late).</param>
    internal StallWatch(ILogger logger, Action<Action> queue, TimeSpan threshold)
    {
        (_logger, _queue, _threshold) = (logger, queue, threshold);
        _thread = new Thread(Watch) { IsBackground = true, Name = "heddle stall watch" };
        _thread.Start();
    }

    private void Watch()
    {
        // Not disposed: a work item queued before a stop may still set it after the loop has ended.
        var ran = new ManualResetEventSlim();
        while (!_stop.IsCancellationRequested)
        {
            ran.Reset();
            var queued = Stopwatch.GetTimestamp();
            var pausedBefore = GC.GetTotalPauseDuration();
            var collectionsBefore = GC.CollectionCount(2);
            _queue(ran.Set);
            if (!ran.Wait(_threshold))
            {
                Volatile.Write(ref _late, true);
                var pending = ThreadPool.PendingWorkItemCount;
                var threads = ThreadPool.ThreadCount;
                // Waits until it ran (or the process stops), so the warning gives the whole stall, once.
                WaitHandle.WaitAny([ran.WaitHandle, _stop.Token.WaitHandle]);
                var late = Stopwatch.GetElapsedTime(queued);
                Volatile.Write(ref _late, false);
                LogStalled(_logger, late.TotalMilliseconds, (GC.GetTotalPauseDuration() - pausedBefore).TotalMilliseconds, GC.CollectionCount(2) - collectionsBefore, threads, pending);
            }

            _stop.Token.WaitHandle.WaitOne(Period);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The controller stalled: a work item waited {LateMs:0} ms for the thread pool "
        + "({PausedMs:0} ms of it the process was paused for garbage collection, {FullCollections} full collection(s); {Threads} pool threads, {Pending} items queued). "
        + "Heartbeats, reports and API calls waited as long: the host is short of CPU or memory, or something blocks the pool's threads")]
    private static partial void LogStalled(ILogger logger, double lateMs, double pausedMs, int fullCollections, int threads, long pending);

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join(TimeSpan.FromSeconds(2));
        _stop.Dispose();
    }
}
