using System.Collections.Concurrent;

namespace Heddle.Controller.Publishing;

/// <summary>
/// A view of the store that data planes (DNS, the load balancer) are fed from: rebuilt after each event
/// (<see cref="ChangeDispatcher"/> schedules it; a burst of events costs one rebuild), published only when it changed,
/// with a growing version. In-process data planes subscribe to <see cref="Changed"/>; remote ones follow the API stream
/// built on it.
/// </summary>
public abstract class StoreProjection<T>
    where T : class
{
    private readonly Lock _lock = new();
    private readonly Lock _rebuilding = new();
    private int _pending;
    private int _working;
    private T? _current;
    private string _fingerprint = "\0";
    private long _version;
    private readonly ConcurrentDictionary<object, long> _followers = new();

    public event Action<T>? Changed;

    public T Current
    {
        get
        {
            lock (_lock)
            {
                return _current ??= Build();
            }
        }
    }

    /// <summary>
    /// Asks for a rebuild. One worker at a time does them: events that arrive while it builds mark the view dirty and the
    /// worker builds once more when it is done, so a burst costs one rebuild more and blocks no thread.
    /// </summary>
    public void Schedule()
    {
        Interlocked.Exchange(ref _pending, 1);
        if (Interlocked.CompareExchange(ref _working, 1, 0) == 0)
        {
            _ = Task.Run(Work);
        }
    }

    private void Work()
    {
        while (true)
        {
            while (Interlocked.Exchange(ref _pending, 0) == 1)
            {
                try
                {
                    Rebuild();
                }
                catch
                {
                    Volatile.Write(ref _working, 0); // the next Schedule starts a worker again
                    throw;
                }
            }

            Interlocked.Exchange(ref _working, 0);

            // A Schedule between the last look and letting go found the worker still busy: take its request.
            if (Volatile.Read(ref _pending) == 0 || Interlocked.CompareExchange(ref _working, 1, 0) != 0)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Builds the view and publishes it when it changed. Rebuilds run one at a time, each building from the store after
    /// the one before it published: two at once (a scheduled one and an upgrade's) could otherwise stamp the view built
    /// first, from an older store, with the higher version, and subscribers would install it last.
    /// </summary>
    public void Rebuild()
    {
        lock (_rebuilding)
        {
            var next = Build();
            var fingerprint = Fingerprint(next);
            lock (_lock)
            {
                if (fingerprint == _fingerprint)
                {
                    return;
                }

                _fingerprint = fingerprint;
                _current = next = Stamp(next, ++_version);
                Published(_version, fingerprint);
            }

            Changed?.Invoke(next);
        }
    }

    /// <summary>A remote follower (an API stream) starts; it reports each view it has sent with <see cref="Delivered"/>.</summary>
    public object AddFollower()
    {
        var follower = new object();
        _followers[follower] = 0;
        return follower;
    }

    public void RemoveFollower(object follower) => _followers.TryRemove(follower, out _);

    public void Delivered(object follower, long version)
    {
        if (_followers.ContainsKey(follower))
        {
            _followers[follower] = version;
        }
    }

    /// <summary>
    /// Rebuilds the view from the store now and says whether every follower has been sent it: in-process subscribers
    /// are told during the rebuild; remote ones once their stream has flushed it. An upgrade waits for this before it
    /// stops instances it has taken out of rotation.
    /// </summary>
    public bool RebuildAndCheckDelivered()
    {
        Rebuild();
        long version;
        lock (_lock)
        {
            version = _version;
        }

        return _followers.Values.All(v => v >= version);
    }

    /// <summary>A view was published with this version, made from what <see cref="Fingerprint"/> said of it (under the view's lock).</summary>
    protected virtual void Published(long version, string fingerprint)
    {
    }

    /// <summary>The version published last (0 before the first change).</summary>
    public long Version
    {
        get
        {
            lock (_lock)
            {
                return _version;
            }
        }
    }

    /// <summary>The version stamped on a view.</summary>
    public abstract long VersionOf(T view);

    /// <summary>Builds the view from the store.</summary>
    protected abstract T Build();

    /// <summary>The view with its version set (the DNS serial, the load-balancer configuration version).</summary>
    protected abstract T Stamp(T view, long version);

    /// <summary>What decides whether the view changed (everything but the version).</summary>
    protected abstract string Fingerprint(T view);
}
