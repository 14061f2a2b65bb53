namespace Heddle.Controller.Store;

/// <summary>
/// Uses of one counted record (a join token's uses left) asked for while a write of it is on its way are taken
/// together in the next write: one conditional write per store round trip for all of them, where each taking its own
/// use conflicted with every other and got through one per round trip (10,000 nodes enrolling with a token of 10,000
/// uses). The first asker writes for everyone waiting, round after round, until nobody waits.
/// </summary>
/// <param name="take">Takes up to n uses in one write and says how many it got (fewer when fewer are left).</param>
/// <param name="idle">Told when nobody waits any more: whoever keeps the combiner may forget it.</param>
internal sealed class UseCombiner(Func<int, Task<int>> take, Action<UseCombiner>? idle = null)
{
    private readonly Lock _lock = new();
    private List<TaskCompletionSource<bool>> _waiting = [];
    private bool _writing;

    /// <summary>True when a use was granted: the first of those waiting get the uses a write took, in the order they asked.</summary>
    public Task<bool> UseAsync()
    {
        var asked = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        bool write;
        lock (_lock)
        {
            _waiting.Add(asked);
            write = !_writing;
            _writing = true;
        }

        if (write)
        {
            _ = WriteAsync();
        }

        return asked.Task;
    }

    private async Task WriteAsync()
    {
        while (true)
        {
            List<TaskCompletionSource<bool>> round;
            lock (_lock)
            {
                if (_waiting.Count == 0)
                {
                    _writing = false;
                    break;
                }

                round = _waiting;
                _waiting = [];
            }

            try
            {
                var granted = await take(round.Count);
                for (var i = 0; i < round.Count; i++)
                {
                    round[i].TrySetResult(i < granted);
                }
            }
            catch (Exception e)
            {
                // The store is away or busy: each asker gets the error, as it would have from a write of its own.
                foreach (var asked in round)
                {
                    asked.TrySetException(e);
                }
            }
        }

        idle?.Invoke(this); // nobody waits: whoever keeps this may forget it (one asking meanwhile has started a writer of its own)
    }
}
