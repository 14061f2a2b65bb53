namespace Heddle.LoadBalancer.LoadBalancing;

/// <summary>
/// Removal drains, the same for L4 and L7: a backend that leaves the pool gets no new work, and what still runs on it
/// after the drain timeout is ended, unless it has come back to the pool meanwhile.
/// </summary>
internal sealed class DrainSchedule(TimeSpan timeout, Func<IReadOnlySet<string>> current, Action<HashSet<string>> end, CancellationToken stop)
{
    /// <summary>The pool went from <paramref name="before"/> to <paramref name="after"/> (backend ids).</summary>
    public void Changed(IEnumerable<string> before, IEnumerable<string> after)
    {
        var gone = before.Except(after, StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal);
        if (gone.Count > 0)
        {
            _ = EndLaterAsync(gone);
        }
    }

    private async Task EndLaterAsync(HashSet<string> gone)
    {
        try
        {
            await Task.Delay(timeout, stop);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        gone.ExceptWith(current());
        if (gone.Count > 0)
        {
            end(gone);
        }
    }
}
