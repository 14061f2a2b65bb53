namespace Heddle.Agent.Connection;

/// <summary>
/// The wait between connection attempts to the controllers: 0.2 s, doubling after each wait, back to 0.2 s once a
/// session is up, and capped at a quarter of <c>--fence-after</c> (at least 0.2 s, at most 5 s; 5 s when fencing is
/// off). The cap keeps an agent that lost a restarting controller back before that controller judges it (a node
/// timeout after its start) and before the fence clock, run from the last refusal, ends. Given a random source, each
/// wait is drawn from the upper half of the current one, so that the agents that lost a controller at one moment (a
/// thousand hollow ones, or a rack) do not all come back at the same instant, and again together at each failure.
/// </summary>
internal sealed class ReconnectBackoff(TimeSpan fenceAfter, TimeProvider time, Random? jitter = null)
{
    /// <summary>The first wait, and the wait after a session was up.</summary>
    public static readonly TimeSpan Initial = TimeSpan.FromMilliseconds(200);

    private static readonly TimeSpan Ceiling = TimeSpan.FromSeconds(5);

    /// <summary>The longest wait: a quarter of the fence time, within [0.2 s, 5 s].</summary>
    public TimeSpan Max { get; } = fenceAfter <= TimeSpan.Zero
        ? Ceiling
        : TimeSpan.FromTicks(Math.Clamp(fenceAfter.Ticks / 4, Initial.Ticks, Ceiling.Ticks));

    /// <summary>The next wait.</summary>
    public TimeSpan Current { get; private set; } = Initial;

    /// <summary>A session is up: the next loss is retried quickly.</summary>
    public void Reset() => Current = Initial;

    /// <summary>
    /// The controller answered and said no (not a network fault): it stays so until someone acts on the reason, so the
    /// next wait is the longest.
    /// </summary>
    public void Refused() => Current = Max;

    /// <summary>Waits <see cref="Current"/> on the agent's clock (with jitter: between half of it and all of it), then doubles it up to <see cref="Max"/>.</summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        await Task.Delay(Wait(), time, cancellationToken);
        Current = TimeSpan.FromTicks(Math.Min(Max.Ticks, Current.Ticks * 2));
    }

    /// <summary>The next wait: <see cref="Current"/>, or a random time between half of it and all of it.</summary>
    public TimeSpan Wait() => jitter is null ? Current : TimeSpan.FromTicks(Current.Ticks / 2 + (long)(jitter.NextDouble() * (Current.Ticks - Current.Ticks / 2)));
}
