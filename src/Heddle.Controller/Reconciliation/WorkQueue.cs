using System.Threading.Channels;

namespace Heddle.Controller.Reconciliation;

/// <summary>
/// A queue of keys to reconcile, as controller-runtime has it: a key waiting is not added twice, and a key being
/// worked on that is added again is worked on again afterwards, so no change is missed and none is handled twice
/// at once.
/// </summary>
public sealed class WorkQueue
{
    private readonly Channel<string> _channel = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly HashSet<string> _waiting = [];
    private readonly Lock _lock = new();

    public void Add(string key)
    {
        lock (_lock)
        {
            if (!_waiting.Add(key))
            {
                return;
            }
        }

        _channel.Writer.TryWrite(key);
    }

    public async ValueTask<string> TakeAsync(CancellationToken cancellationToken)
    {
        var key = await _channel.Reader.ReadAsync(cancellationToken);
        lock (_lock)
        {
            _waiting.Remove(key);
        }

        return key;
    }
}
