namespace Heddle.Controller.Agents;

/// <summary>
/// One timer for the keepalives of every agent stream, in place of a timer per stream. With a timer each, the runtime's
/// timer queue walked thousands of timers every time one fired: at 2,500 connected nodes that was the largest share of
/// an idle controller's own code. The streams are spread over <see cref="Slots"/> turns of the period, so their
/// keepalives do not all go out at once.
/// </summary>
public sealed class KeepaliveClock : IDisposable
{
    /// <summary>How many turns a period is cut into: a stream keeps its turn for its life.</summary>
    public const int Slots = 10;

    private readonly TaskCompletionSource[] _slots = new TaskCompletionSource[Slots];
    private readonly ITimer _timer;
    private readonly Lock _ticking = new();
    private int _turn;
    private int _joined;

    public KeepaliveClock()
        : this(TimeProvider.System, TimeSpan.FromSeconds(1))
    {
    }

    /// <param name="period">How often each stream's turn comes.</param>
    public KeepaliveClock(TimeProvider time, TimeSpan period)
    {
        for (var i = 0; i < Slots; i++)
        {
            _slots[i] = NewTurn();
        }

        _timer = time.CreateTimer(_ => Tick(), null, period / Slots, period / Slots);
    }

    /// <summary>The turn of a new stream: streams take the turns in rotation.</summary>
    public int Join() => (int)((uint)Interlocked.Increment(ref _joined) % Slots);

    /// <summary>Completes at the next coming of the turn (once per period).</summary>
    public Task Next(int turn) => Volatile.Read(ref _slots[turn]).Task;

    private void Tick()
    {
        TaskCompletionSource due;
        lock (_ticking) // a late callback may overlap the next: each turn comes once, in order
        {
            due = Interlocked.Exchange(ref _slots[_turn], NewTurn());
            _turn = (_turn + 1) % Slots;
        }

        due.TrySetResult();
    }

    // Each stream's keepalive is written on the thread pool, not on the timer's thread one after another.
    private static TaskCompletionSource NewTurn() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Dispose() => _timer.Dispose();
}
