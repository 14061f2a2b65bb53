namespace Heddle.Agent.Connection;

/// <summary>
/// What the agent's fencing measures silence from: when a controller last said anything, and when each controller last
/// refused a connection, in <see cref="Millis"/> of the agent's clock. Kept apart from the gRPC stream so that the rule
/// — a refusal from every controller proves none was judging this node — can be tested on a fake clock.
/// </summary>
internal sealed class FenceClock(TimeProvider time, int controllers)
{
    /// <summary>For each controller, when it last refused a connection (its agent port closed: no controller process there).</summary>
    private readonly long[] _refused = new long[controllers];

    /// <summary>
    /// Milliseconds of <paramref name="time"/>'s monotonic timestamp: the unit every time here is in. Multiplied in 128
    /// bits: Linux's timestamps are nanoseconds since boot, and times 1000 they pass a long's range after 106 days of
    /// uptime, when silence read as negative would never fence.
    /// </summary>
    public static long Millis(TimeProvider time) => (long)((Int128)time.GetTimestamp() * 1000 / time.TimestampFrequency);

    /// <summary>Now, in <see cref="Millis"/>.</summary>
    public long Now => Millis(time);

    /// <summary>When a controller last said anything (a goal state or its keepalive); the agent's start before that.</summary>
    public long LastHeard { get; private set; } = Millis(time);

    /// <summary>Records that a controller said something now, and returns now.</summary>
    public long Heard() => LastHeard = Now;

    /// <summary>Records that controller number <paramref name="controller"/> (counted round the list) refused a connection now.</summary>
    public void Refused(int controller) => _refused[controller % _refused.Length] = Now;

    /// <summary>
    /// Since when a running controller could have been judging this node without hearing from it. A controller that
    /// refused a connection was not running then, and one that starts afterwards gives every node a full node timeout
    /// from its start; so while every controller has refused since the agent last heard from one (the controller crashed
    /// or is restarting), nothing can have given this node's instances to another, and the clock runs from the latest
    /// refusal instead of from the last word. A controller that does not answer at all (a partition) gives no such proof.
    /// </summary>
    public long SilentSince
    {
        get
        {
            var since = long.MaxValue;
            foreach (var refused in _refused)
            {
                since = Math.Min(since, Math.Max(LastHeard, refused));
            }

            return since;
        }
    }
}
