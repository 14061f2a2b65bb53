using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Heddle.LoadBalancer.L4.Linux;

/// <summary>Something the event loop delivers readiness and timers to; called on the loop's thread only.</summary>
internal interface IEventHandler
{
    /// <summary><paramref name="side"/> is the one given when the file descriptor was added (0 or 1).</summary>
    void OnEvent(int side, uint events);

    void OnTimer(int cookie);

    /// <summary>A call above threw: the handler must release what it holds.</summary>
    void OnFault(Exception error);
}

/// <summary>
/// One thread waiting in epoll and calling handlers, as HAProxy and nginx run: no tasks, no thread pool, no
/// allocation per event. Handlers live in a slab; an epoll registration carries the slot, a generation (so an event
/// for a handler that has gone is dropped) and a side. Work from other threads is posted and the loop woken through
/// an eventfd. Timers are a heap of deadlines. A 64 KiB scratch buffer is shared by every handler, since only one
/// runs at a time.
/// A loop that finds nothing to do polls epoll again without waiting for a short while (busy polling) before it sleeps:
/// under load the next event is usually microseconds away, and a loop that sleeps for it waits to be woken and then
/// for a core. With 32 keep-alive clients through one loop on two shared cores, sleeping at once made about 20,000
/// sleeps a second against HAProxy's 5,000 and 0.85-0.93x its requests a second; 20 µs of polling made it 1.0x for about
/// 1 µs more CPU per request. An idle loop spends those microseconds once, after its last event.
/// </summary>
internal sealed unsafe class EventLoop : IDisposable
{
    public const int ScratchSize = 64 * 1024;
    private const int MaxEvents = 256;
    private const ulong WakeData = ulong.MaxValue;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly byte* _events;
    private readonly Thread _thread;
    private readonly long _busyPoll; // in Stopwatch ticks; 0: sleep at once
    private readonly ConcurrentQueue<Action> _posted = new();
    private readonly PriorityQueue<(ulong Token, int Cookie), long> _timers = new();
    private readonly Stack<int> _free = new();
    private IEventHandler?[] _handlers = new IEventHandler?[64];
    private uint[] _generations = new uint[64];
    private int _used;
    private volatile bool _stopping;
    private readonly Lock _wakeLock = new();
    private bool _closed;
    private int _disposed;

    /// <param name="name">The thread's name.</param>
    /// <param name="busyPoll">How long the loop polls without waiting before it sleeps; zero sleeps at once.</param>
    public EventLoop(string name, TimeSpan busyPoll = default)
    {
        _busyPoll = (long)(Math.Max(0, busyPoll.TotalSeconds) * System.Diagnostics.Stopwatch.Frequency);
        _epoll = Libc.epoll_create1(Libc.EpollCloexec);
        if (_epoll < 0)
        {
            throw new IOException($"epoll_create1 failed (errno {Libc.Errno})");
        }

        _wake = Libc.eventfd(0, Libc.EfdNonBlock | Libc.EfdCloexec);
        if (_wake < 0 || Libc.EpollAdd(_epoll, _wake, Libc.EpollIn, WakeData) < 0)
        {
            Libc.close(_epoll);
            throw new IOException($"eventfd failed (errno {Libc.Errno})");
        }

        Scratch = (byte*)NativeMemory.Alloc(ScratchSize);
        _events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * Libc.EventSize));
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>The buffer handlers read into; valid only during a call from the loop.</summary>
    public byte* Scratch { get; }

    public bool IsLoopThread => Environment.CurrentManagedThreadId == _thread.ManagedThreadId;

    /// <summary>Takes a slot for <paramref name="handler"/>; the token names it in <see cref="Add"/> and timers.</summary>
    public ulong Register(IEventHandler handler)
    {
        int slot;
        if (!_free.TryPop(out slot))
        {
            if (_used == _handlers.Length)
            {
                Array.Resize(ref _handlers, _handlers.Length * 2);
                Array.Resize(ref _generations, _generations.Length * 2);
            }

            slot = _used++;
        }

        _handlers[slot] = handler;
        return ((ulong)_generations[slot] << 32) | (uint)slot;
    }

    /// <summary>Frees the slot: events and timers still on their way to it are dropped.</summary>
    public void Unregister(ulong token)
    {
        var slot = (int)(uint)token;
        if (_generations[slot] == (uint)(token >> 32) && _handlers[slot] is not null)
        {
            _handlers[slot] = null;
            _generations[slot] = (_generations[slot] + 1) & 0x7FFF_FFFF;
            _free.Push(slot);
        }
    }

    /// <summary>Watches <paramref name="fd"/> for <paramref name="events"/>; returns false (errno kept) if epoll refused.</summary>
    public bool Add(int fd, ulong token, int side, uint events) =>
        Libc.EpollAdd(_epoll, fd, events, token | ((ulong)side << 31)) == 0;

    public void Remove(int fd) => Libc.epoll_ctl(_epoll, Libc.EpollCtlDel, fd, null);

    /// <summary>Calls the handler's <see cref="IEventHandler.OnTimer"/> with <paramref name="cookie"/> once <paramref name="delay"/> has passed.</summary>
    public void Schedule(ulong token, TimeSpan delay, int cookie) =>
        _timers.Enqueue((token, cookie), Environment.TickCount64 + (long)Math.Ceiling(delay.TotalMilliseconds));

    /// <summary>Runs <paramref name="action"/> on the loop (from any thread).</summary>
    public void Post(Action action)
    {
        // Under the lock Dispose closes the eventfd with: a descriptor number, once closed, may already belong to
        // someone else's socket or file in this process, and eight bytes written there would corrupt it.
        lock (_wakeLock)
        {
            if (_closed)
            {
                return; // the loop is gone; so is everything its work was about
            }

            _posted.Enqueue(action);
            ulong one = 1;
            Libc.write(_wake, (byte*)&one, sizeof(ulong));
        }
    }

    /// <summary>Runs <paramref name="action"/> on the loop and waits for it; inline when already on the loop.</summary>
    public Task InvokeAsync(Action action)
    {
        if (IsLoopThread)
        {
            action();
            return Task.CompletedTask;
        }

        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            try
            {
                action();
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        if (_stopping)
        {
            done.TrySetCanceled();
        }

        return done.Task;
    }

    private void Run()
    {
        long pollingUntil = 0; // while polling after the last event: until when; 0 when not polling
        while (!_stopping)
        {
            var timeout = NextTimeout();
            var polling = timeout != 0 && _busyPoll > 0 && (pollingUntil == 0 || System.Diagnostics.Stopwatch.GetTimestamp() < pollingUntil);
            var count = Libc.epoll_wait(_epoll, _events, MaxEvents, polling ? 0 : timeout);
            if (polling && count == 0)
            {
                if (pollingUntil == 0)
                {
                    pollingUntil = System.Diagnostics.Stopwatch.GetTimestamp() + _busyPoll;
                }

                continue;
            }

            pollingUntil = 0;
            if (count < 0)
            {
                if (Libc.Errno == Libc.EIntr)
                {
                    continue;
                }

                throw new IOException($"epoll_wait failed (errno {Libc.Errno})");
            }

            for (var i = 0; i < count; i++)
            {
                var entry = _events + (i * Libc.EventSize);
                var events = *(uint*)entry;
                var data = *(ulong*)(entry + Libc.EventDataOffset);
                if (data == WakeData)
                {
                    ulong ignored;
                    Libc.read(_wake, (byte*)&ignored, sizeof(ulong));
                    continue;
                }

                var handler = Find(data & ~(1UL << 31));
                try
                {
                    handler?.OnEvent((int)((data >> 31) & 1), events);
                }
                catch (Exception e)
                {
                    handler!.OnFault(e);
                }
            }

            RunPosted();
            RunTimers();
        }
    }

    private void RunPosted()
    {
        while (_posted.TryDequeue(out var action))
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                // Posted work is the listeners' own (drains, swaps); one that fails must not stop every connection.
                Console.Error.WriteLine($"heddle-l4: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    private int NextTimeout()
    {
        if (!_posted.IsEmpty)
        {
            return 0;
        }

        if (!_timers.TryPeek(out _, out var deadline))
        {
            return -1;
        }

        return (int)Math.Clamp(deadline - Environment.TickCount64, 0, int.MaxValue);
    }

    private void RunTimers()
    {
        var now = Environment.TickCount64;
        while (_timers.TryPeek(out var timer, out var deadline) && deadline <= now)
        {
            _timers.Dequeue();
            var handler = Find(timer.Token);
            try
            {
                handler?.OnTimer(timer.Cookie);
            }
            catch (Exception e)
            {
                handler!.OnFault(e);
            }
        }
    }

    private IEventHandler? Find(ulong token)
    {
        var slot = (int)(uint)token;
        return slot < _used && _generations[slot] == (uint)(token >> 32) ? _handlers[slot] : null;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Post(() => _stopping = true);
        _thread.Join();
        lock (_wakeLock)
        {
            _closed = true; // no more posts
        }

        RunPosted(); // what was queued still runs, with the epoll descriptor still this loop's
        Libc.close(_wake);
        Libc.close(_epoll);
        NativeMemory.Free(_events);
        NativeMemory.Free(Scratch);
    }
}
