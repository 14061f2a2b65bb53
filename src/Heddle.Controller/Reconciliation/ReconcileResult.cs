namespace Heddle.Controller.Reconciliation;

/// <summary>How a reconcile pass ended, as controller-runtime has it: done, look again after a delay, or a conflict to retry with backoff.</summary>
public readonly record struct ReconcileResult(bool Conflict, TimeSpan? RequeueAfter)
{
    public static readonly ReconcileResult Done = new(false, null);

    public static readonly ReconcileResult Retry = new(true, null);

    public static ReconcileResult After(TimeSpan delay) => new(false, delay < TimeSpan.Zero ? TimeSpan.Zero : delay);

    /// <summary>The sooner of two results' requeue delays.</summary>
    public static ReconcileResult Sooner(ReconcileResult a, ReconcileResult b) =>
        a.Conflict || b.Conflict ? Retry
        : a.RequeueAfter is null ? b
        : b.RequeueAfter is null ? a
        : After(a.RequeueAfter.Value < b.RequeueAfter.Value ? a.RequeueAfter.Value : b.RequeueAfter.Value);
}
