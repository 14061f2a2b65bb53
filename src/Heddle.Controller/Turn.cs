namespace Heddle.Controller;

/// <summary>
/// A turn taken on a gate (a SemaphoreSlim of one), given back once: at the point its holder stops needing it, or when
/// it is disposed at the end, whichever comes first.
/// </summary>
internal sealed class Turn(SemaphoreSlim gate) : IDisposable
{
    private int _released;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            gate.Release();
        }
    }
}
