using System.Buffers;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Agents;

/// <summary>
/// One timer for the keepalive turns of every agent stream. The streams are spread over <see cref="Slots"/> turns of the
/// period; at each tick the clock calls, on its own thread, what each stream of that turn asked to be called with
/// (<see cref="Join"/>): a few reads that decide whether the stream needs waking at all.
/// <para>
/// With a timer per stream the runtime's timer queue walked thousands of timers every time one fired. With one timer
/// whose turns every stream's writer awaited, every stream was still woken each second on the thread pool, though a
/// stream whose heartbeats come as datagrams sends nothing then: at 10,000 idle nodes that was about 20,000 work items
/// and 2.7 MB of garbage a second. Now a stream's writer wakes only when it has a keepalive to send.
/// </para>
/// </summary>
public sealed partial class KeepaliveClock : IDisposable
{
    /// <summary>How many turns a period is cut into: a stream keeps its turn for its life.</summary>
    public const int Slots = 10;

    private readonly List<Member>[] _slots = new List<Member>[Slots];
    private readonly ITimer _timer;
    private readonly Lock _lock = new();
    private readonly ILogger? _logger;
    private int _turn;
    private int _joined;

    public KeepaliveClock(ILogger<KeepaliveClock> logger)
        : this(TimeProvider.System, TimeSpan.FromSeconds(1), logger)
    {
    }

    /// <param name="period">How often each stream's turn comes.</param>
    public KeepaliveClock(TimeProvider time, TimeSpan period, ILogger? logger = null)
    {
        for (var i = 0; i < Slots; i++)
        {
            _slots[i] = [];
        }

        _logger = logger;
        _timer = time.CreateTimer(_ => Tick(), null, period / Slots, period / Slots);
    }

    /// <summary>How many streams have a turn now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _slots.Sum(s => s.Count);
            }
        }
    }

    /// <summary>
    /// Gives a stream a turn (streams take the turns in rotation): <paramref name="turn"/> is called once a period on the
    /// clock's thread, so it must be quick and must not wait. Disposing the result ends the turns.
    /// </summary>
    public IDisposable Join(Action turn)
    {
        var member = new Member(this, (int)((uint)Interlocked.Increment(ref _joined) % Slots), turn);
        lock (_lock)
        {
            var slot = _slots[member.Slot];
            member.Index = slot.Count;
            slot.Add(member);
        }

        return member;
    }

    private void Leave(Member member)
    {
        lock (_lock)
        {
            if (member.Index < 0)
            {
                return;
            }

            // The last of the slot takes the leaver's place: a leave costs the same at any size.
            var slot = _slots[member.Slot];
            var last = slot[^1];
            slot[member.Index] = last;
            last.Index = member.Index;
            slot.RemoveAt(slot.Count - 1);
            member.Index = -1;
        }
    }

    private void Tick()
    {
        Member[] due;
        int count;
        lock (_lock) // a late callback may overlap the next: each turn comes once, in order
        {
            var slot = _slots[_turn];
            _turn = (_turn + 1) % Slots;
            count = slot.Count;
            due = ArrayPool<Member>.Shared.Rent(Math.Max(count, 1));
            slot.CopyTo(due);
        }

        try
        {
            // Called outside the lock: a turn may end its own stream, and the stream leaves.
            for (var i = 0; i < count; i++)
            {
                try
                {
                    due[i].Turn();
                }
                catch (Exception e)
                {
                    // One stream's turn failing must not take the others' (nor the process: this is a timer's thread).
                    if (_logger is not null)
                    {
                        LogTurnFailed(_logger, e);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<Member>.Shared.Return(due, clearArray: true);
        }
    }

    public void Dispose() => _timer.Dispose();

    [LoggerMessage(Level = LogLevel.Error, Message = "An agent stream's keepalive turn failed; the other streams' turns go on")]
    private static partial void LogTurnFailed(ILogger logger, Exception exception);

    private sealed class Member(KeepaliveClock clock, int slot, Action turn) : IDisposable
    {
        public int Slot { get; } = slot;

        /// <summary>Where the member is in its slot's list; -1 once it left. Read and written under the clock's lock.</summary>
        public int Index { get; set; }

        public void Turn() => turn();

        public void Dispose() => clock.Leave(this);
    }
}
