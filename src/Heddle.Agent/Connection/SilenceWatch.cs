namespace Heddle.Agent.Connection;

/// <summary>
/// Whether a session has heard nothing from its controller for longer than its limit, looked at every
/// <see cref="Period"/>. A look more than <see cref="StallMinimum"/> late means this process was stalled itself (paused
/// for garbage collection, short of CPU): the controller's words of that time wait unread in the stream, so that time
/// is not counted as the controller's silence, until a word is heard again. Counted, a hollow process of 2,500 agents
/// on a busy machine hung up on a live controller with hundreds of its agents at once, and their reconnections kept
/// the controller too busy to answer the rest. Only hanging up waits for it: fencing runs from the last word heard,
/// whatever stalled.
/// </summary>
internal sealed class SilenceWatch(TimeSpan limit, long startMillis)
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    public static readonly TimeSpan StallMinimum = TimeSpan.FromMilliseconds(500);

    private long _due = startMillis + (long)Period.TotalMilliseconds;
    private long _stalled;
    private long _creditFor = long.MinValue; // the last word heard that _stalled counts from

    /// <summary>Looks at the session at <paramref name="now"/>, its controller last heard at <paramref name="heard"/> (both in milliseconds of one clock).</summary>
    public bool Silent(long now, long heard)
    {
        if (heard != _creditFor)
        {
            (_stalled, _creditFor) = (0, heard); // stalls before the last word heard are no part of this silence
        }

        var late = now - _due;
        if (late > StallMinimum.TotalMilliseconds)
        {
            _stalled += late;
        }

        _due = now + (long)Period.TotalMilliseconds;
        return now - heard - _stalled > limit.TotalMilliseconds;
    }
}
