using System.Threading.Channels;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// A queue of keys to reconcile, as controller-runtime has it: a key waiting is not added twice, and a key being
/// worked on that is added again is queued once its work is <see cref="Done"/>, so no change is missed and no key is
/// worked on twice at once, however many workers take from the queue.
/// </summary>
public sealed class WorkQueue
{
    private readonly Channel<string> _channel = Channel.CreateUnbounded<string>();
    private readonly HashSet<string> _waiting = [];
    private readonly HashSet<string> _working = [];
    private readonly Lock _lock = new();

    public void Add(string key)
    {
        lock (_lock)
        {
            if (!_waiting.Add(key) || _working.Contains(key))
            {
                return; // queued already, or queued when its work is done
            }
        }

        _channel.Writer.TryWrite(key);
    }

    /// <summary>The next key; it is the caller's until it calls <see cref="Done"/>.</summary>
    public async ValueTask<string> TakeAsync(CancellationToken cancellationToken)
    {
        var key = await _channel.Reader.ReadAsync(cancellationToken);
        lock (_lock)
        {
            _waiting.Remove(key);
            _working.Add(key);
        }

        return key;
    }

    /// <summary>The work on a key taken is over; if it was added meanwhile, it is queued again now.</summary>
    public void Done(string key)
    {
        lock (_lock)
        {
            _working.Remove(key);
            if (!_waiting.Contains(key))
            {
                return;
            }
        }

        _channel.Writer.TryWrite(key);
    }
}
