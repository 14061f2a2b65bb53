namespace Heddle.Contracts.Timing;

/// <summary>
/// One clock for a process with thousands of timers of the same few periods: every timer made on it is kept on one wheel
/// turned by a single timer of the clock underneath, at most each <see cref="Resolution"/>, instead of being a timer of the
/// runtime each. The runtime's timer queue walks its near timers each time one fires, under one lock for them all:
/// <list type="bullet">
/// <item>a hollow node has about four periodic timers (fencing's ten times a second among them): 5,000 nodes in one
/// process made 20,000 runtime timers firing 67,000 times a second, the largest share of the process's time;</item>
/// <item>a balancer probes each backend on its own period, with a timeout: 25,000 backends are 25,000 timers and 5,000
/// timeouts a second.</item>
/// </list>
/// A timer here fires up to one <see cref="Resolution"/> late, never early; its callback runs on the thread pool, as the
/// runtime's do. A process with a few timers keeps the runtime's.
/// The wheel turns only towards a tick that has a timer due: its one runtime timer is set for the nearest, so a clock
/// whose timers are seconds apart (a balancer probing a few backends) does not wake the process every resolution.
/// </summary>
public sealed class SharedClock : TimeProvider, IDisposable
{
    /// <summary>Slots on the wheel: timers due within Slots × Resolution wait in their slot; later ones go round again.</summary>
    private const int Slots = 512;

    private readonly TimeProvider _inner;
    private readonly long _resolutionTicks; // in the inner clock's timestamp units
    private readonly long _started;
    private readonly List<Entry>[] _wheel = new List<Entry>[Slots];
    private readonly Lock _lock = new();
    private readonly ITimer _turning;
    private readonly Action<TimerCallback, object?> _run;
    private long _turned; // the last wheel tick whose slot was taken
    private long _armed = long.MaxValue; // the tick the turning timer is set for; MaxValue when it is not set
    private bool _disposed;

    public SharedClock(TimeProvider inner, TimeSpan resolution)
        : this(inner, resolution, static (callback, state) => ThreadPool.UnsafeQueueUserWorkItem(s => callback(s), state, preferLocal: false))
    {
    }

    /// <param name="inner">The clock that turns the wheel and tells the time.</param>
    /// <param name="resolution">How often the wheel turns: how late at most a timer fires.</param>
    /// <param name="run">Runs a due timer's callback: on the thread pool, or (tests) at once, on the turning thread.</param>
    public SharedClock(TimeProvider inner, TimeSpan resolution, Action<TimerCallback, object?> run)
    {
        _run = run;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(resolution, TimeSpan.Zero);
        _inner = inner;
        Resolution = resolution;
        _resolutionTicks = Math.Max(1, (long)(resolution.TotalSeconds * inner.TimestampFrequency));
        _started = inner.GetTimestamp();
        for (var i = 0; i < Slots; i++)
        {
            _wheel[i] = [];
        }

        _turning = inner.CreateTimer(_ => Turn(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>How late at most a timer fires.</summary>
    public TimeSpan Resolution { get; }

    public override DateTimeOffset GetUtcNow() => _inner.GetUtcNow();

    public override long GetTimestamp() => _inner.GetTimestamp();

    public override long TimestampFrequency => _inner.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => _inner.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new SharedTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
        }

        _turning.Dispose();
    }

    /// <summary>The wheel tick now: how many resolutions have passed since the clock started.</summary>
    private long Now() => (_inner.GetTimestamp() - _started) / _resolutionTicks;

    /// <summary>The time now, in the inner clock's timestamp units since the clock started.</summary>
    private long Elapsed() => _inner.GetTimestamp() - _started;

    private long Span(TimeSpan wait) => (long)Math.Ceiling(Math.Max(0, wait.TotalSeconds) * _inner.TimestampFrequency);

    /// <summary>Puts the timer on the wheel for <paramref name="at"/> (timestamp units since the start): in the first tick that begins at or after it.</summary>
    private void Schedule(SharedTimer timer, int version, long at)
    {
        lock (_lock)
        {
            // Never into a slot already taken: a tick that has passed is the next one to be taken.
            var due = Math.Max((at + _resolutionTicks - 1) / _resolutionTicks, _turned + 1);
            _wheel[due % Slots].Add(new Entry(timer, version, due, at));
            if (due < _armed)
            {
                Arm(due);
            }
        }
    }

    /// <summary>Sets the turning timer for <paramref name="tick"/> (under the lock): at least a millisecond away, as a timer that fires a little early only turns again.</summary>
    private void Arm(long tick)
    {
        if (_disposed)
        {
            return;
        }

        _armed = tick;
        var wait = _started + (tick * _resolutionTicks) - _inner.GetTimestamp();
        var milliseconds = Math.Max(1, (long)Math.Ceiling(wait * 1000.0 / _inner.TimestampFrequency));
        _turning.Change(TimeSpan.FromMilliseconds(milliseconds), Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// The nearest tick after the last one taken that has a timer due (under the lock): the first slot holding an entry
    /// due on this round of the wheel; when none does, the earliest entry of all, on a later round. Entries of timers
    /// changed since are counted too: they cost a turn that finds nothing.
    /// </summary>
    private long NextDue()
    {
        var earliest = long.MaxValue;
        for (var ahead = 1; ahead <= Slots; ahead++)
        {
            var tick = _turned + ahead;
            foreach (var entry in _wheel[tick % Slots])
            {
                if (entry.Due == tick)
                {
                    return tick;
                }

                earliest = Math.Min(earliest, entry.Due);
            }
        }

        return earliest;
    }

    /// <summary>Takes every slot up to now (more than one when this turn came late), and fires what is due in them.</summary>
    private void Turn()
    {
        var now = Now();
        List<Entry>? due = null;
        lock (_lock)
        {
            // After a long sleep each slot is taken once, at the last of the ticks that fall on it: what is due there by then fires.
            for (var tick = Math.Max(_turned + 1, now - Slots + 1); tick <= now; tick++)
            {
                var slot = _wheel[tick % Slots];
                var kept = 0;
                for (var i = 0; i < slot.Count; i++)
                {
                    var entry = slot[i];
                    if (entry.Due > tick)
                    {
                        slot[kept++] = entry; // due on a later round of the wheel
                    }
                    else if (entry.Timer.Version == entry.Version)
                    {
                        (due ??= []).Add(entry);
                    }
                }

                slot.RemoveRange(kept, slot.Count - kept);
            }

            _turned = Math.Max(_turned, now);
            _armed = long.MaxValue;
            var next = NextDue();
            if (next != long.MaxValue)
            {
                Arm(next);
            }
        }

        foreach (var entry in due ?? [])
        {
            entry.Timer.Fire(entry.Version, entry.At);
        }
    }

    private readonly record struct Entry(SharedTimer Timer, int Version, long Due, long At);

    private sealed class SharedTimer(SharedClock clock, TimerCallback callback, object? state) : ITimer
    {
        private readonly Lock _gate = new();
        private TimeSpan _period = Timeout.InfiniteTimeSpan;
        private int _version;
        private bool _disposed;

        /// <summary>Moved on by each Change and by Dispose: entries on the wheel of an older version are dropped.</summary>
        public int Version => Volatile.Read(ref _version);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            int version;
            lock (_gate)
            {
                if (_disposed)
                {
                    return false;
                }

                _period = period;
                version = ++_version;
            }

            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                clock.Schedule(this, version, clock.Elapsed() + clock.Span(dueTime));
            }

            return true;
        }

        /// <summary>
        /// Runs the callback on the pool; a periodic timer is put back on the wheel one period after the time it was due
        /// at (so it does not drift), or one period from now when it has fallen a whole period behind (as the runtime's do).
        /// </summary>
        public void Fire(int version, long at)
        {
            TimeSpan period;
            lock (_gate)
            {
                if (_disposed || _version != version)
                {
                    return;
                }

                period = _period;
            }

            if (period != Timeout.InfiniteTimeSpan && period > TimeSpan.Zero)
            {
                var next = at + clock.Span(period);
                var now = clock.Elapsed();
                clock.Schedule(this, version, next > now ? next : now + clock.Span(period));
            }

            clock._run(callback, state);
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _disposed = true;
                _version++;
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
