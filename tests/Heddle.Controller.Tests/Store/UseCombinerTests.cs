using Heddle.Controller.Store;

namespace Heddle.Controller.Tests.Store;

/// <summary>Uses of a counted record asked for while a write is on its way go together in the next write.</summary>
public sealed class UseCombinerTests
{
    [Fact]
    public async Task UsesAskedWhileAWriteIsOnItsWay_GoInTheNextWriteTogether_AndTheFirstAskedGetWhatIsLeft()
    {
        var rounds = new List<int>();
        var firstWrite = new TaskCompletionSource();
        var forgotten = 0;
        async Task<int> Take(int asked)
        {
            lock (rounds)
            {
                rounds.Add(asked);
            }

            if (rounds.Count == 1)
            {
                await firstWrite.Task;
                return 1;
            }

            return Math.Min(asked, 4); // four uses left
        }

        var combiner = new UseCombiner(Take, _ => Interlocked.Increment(ref forgotten));
        var first = combiner.UseAsync();
        var later = Enumerable.Range(0, 10).Select(_ => combiner.UseAsync()).ToList();
        Assert.False(first.IsCompleted);
        firstWrite.SetResult();

        Assert.True(await first);
        var granted = await Task.WhenAll(later);
        Assert.Equal([1, 10], rounds);
        Assert.Equal([true, true, true, true, false, false, false, false, false, false], granted);
        Assert.Equal(1, forgotten);
    }

    [Fact]
    public async Task AWriteThatFails_FailsEveryUseInIt_AndTheNextAskWritesAgain()
    {
        var fail = true;
        Task<int> Take(int asked) => fail ? throw new InvalidOperationException("store away") : Task.FromResult(asked);
        var combiner = new UseCombiner(Take);

        await Assert.ThrowsAsync<InvalidOperationException>(() => combiner.UseAsync());
        fail = false;
        Assert.True(await combiner.UseAsync());
    }
}
