namespace Heddle.Agent.Instances;

/// <summary>
/// The wait before an instance is started again: <c>--restart-backoff</c> (1 s) doubling after each failure up to
/// 5 min; a run that lasted a minute was stable, so its failure counts as the first again. Runs on the agent's clock.
/// </summary>
internal sealed class RestartBackoff(TimeSpan initial, TimeProvider time)
{
    public static readonly TimeSpan Max = TimeSpan.FromMinutes(5);

    /// <summary>How long a run must last for its failure to start the doubling afresh.</summary>
    public static readonly TimeSpan StableAfter = TimeSpan.FromMinutes(1);

    private DateTimeOffset _startedAt = time.GetUtcNow();

    /// <summary>Failures in a row so far (a stable run's failure counts as 1).</summary>
    public int Failures { get; private set; }

    /// <summary>The wait after the <paramref name="attempt"/>th failure in a row (counted from 1).</summary>
    public static TimeSpan Delay(TimeSpan initial, int attempt) =>
        TimeSpan.FromSeconds(Math.Min(Max.TotalSeconds, initial.TotalSeconds * Math.Pow(2, attempt - 1)));

    /// <summary>A run begins now.</summary>
    public void Started() => _startedAt = time.GetUtcNow();

    /// <summary>The run that began at <see cref="Started"/> failed: the wait before the next.</summary>
    public TimeSpan Failed()
    {
        Failures = time.GetUtcNow() - _startedAt >= StableAfter ? 1 : Failures + 1;
        return Delay(initial, Failures);
    }
}
