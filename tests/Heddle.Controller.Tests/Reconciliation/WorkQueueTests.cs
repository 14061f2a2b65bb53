using Heddle.Controller.Reconciliation;

namespace Heddle.Controller.Tests.Reconciliation;

/// <summary>The reconcilers' queue: a change is never missed, a service is never queued twice while it waits, nor worked on by two workers at once.</summary>
public sealed class WorkQueueTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task AKeyAddedWhileItWaits_IsTakenOnce_InTheOrderKeysCame()
    {
        var queue = new WorkQueue();
        queue.Add("a");
        queue.Add("b");
        queue.Add("a");

        Assert.Equal("a", await queue.TakeAsync(None));
        Assert.Equal("b", await queue.TakeAsync(None));
        using var nothingMore = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await queue.TakeAsync(nothingMore.Token));
    }

    [Fact]
    public async Task AKeyAddedWhileItIsWorkedOn_IsTakenAgainAfterwards()
    {
        var queue = new WorkQueue();
        queue.Add("a");
        Assert.Equal("a", await queue.TakeAsync(None)); // being reconciled now
        queue.Add("a"); // changed meanwhile: the pass under way may have read the store before the change
        queue.Add("b");

        // Another worker gets b, never a second a while the first is worked on.
        Assert.Equal("b", await queue.TakeAsync(None));
        var next = queue.TakeAsync(None).AsTask(); // a key in the channel is handed over at once: none is
        Assert.False(next.IsCompleted, "a was handed to a second worker while the first still worked on it");

        queue.Done("a");
        Assert.Equal("a", await next.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task AKeyDoneWithoutBeingAddedAgain_IsNotTakenAgain()
    {
        var queue = new WorkQueue();
        queue.Add("a");
        Assert.Equal("a", await queue.TakeAsync(None));
        queue.Done("a");

        using var nothingMore = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await queue.TakeAsync(nothingMore.Token));
    }

    [Fact]
    public async Task ATakerWaiting_GetsTheNextKeyAddedFromAnotherThread()
    {
        var queue = new WorkQueue();
        var taking = queue.TakeAsync(None).AsTask();
        Assert.False(taking.IsCompleted);
        await Task.Run(() => queue.Add("late"));
        Assert.Equal("late", await taking.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
