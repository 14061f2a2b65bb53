using System.Collections.Concurrent;
using System.Threading.Channels;
using Heddle.Contracts.Agents;

namespace Heddle.Controller.Agents;

/// <summary>
/// The agents connected now, one stream each. A session keeps no queue of goal states, only a mark that the node's goal
/// state may have changed: the stream's writer computes it from the store when it is ready to send it, and sends what
/// changed since the last one it sent (<see cref="GoalSender"/>). A burst of changes touching a node (every peer of a role turning Ready) costs one goal state,
/// not one per change, and an agent that is slow to read never sees a stale state after a fresh one.
/// </summary>
/// <param name="peerDelay">
/// How long a change that only touches a node's peers (another instance of a role turning Ready) waits before the node's
/// goal state is sent, so that the changes of a whole deployment reach each node in a few goal states rather than one
/// per instance. Changes to a node's own instances are sent at once. Default 1 s.
/// </param>
public sealed class AgentSessions(GoalStates goals, TimeProvider? time = null, TimeSpan? peerDelay = null)
{
    /// <summary>The default of <c>peerDelay</c>.</summary>
    public static readonly TimeSpan DefaultPeerDelay = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, AgentSession> _sessions = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly TimeSpan _peerDelay = peerDelay ?? DefaultPeerDelay;

    public AgentSession Open(string node)
    {
        var session = new AgentSession(node, goals.ViewOf);
        if (_sessions.TryGetValue(node, out var previous))
        {
            previous.Close();
        }

        _sessions[node] = session;
        session.Changed();
        return session;
    }

    public void Close(AgentSession session)
    {
        _sessions.TryRemove(new KeyValuePair<string, AgentSession>(session.Node, session));
        session.Close();
    }

    public bool IsConnected(string node) => _sessions.ContainsKey(node);

    /// <summary>Ends every stream (this controller is stopping: its agents move to another controller at once).</summary>
    public void CloseAll()
    {
        foreach (var node in _sessions.Keys)
        {
            Disconnect(node);
        }
    }

    /// <summary>The nodes connected to this controller now.</summary>
    public IReadOnlyList<string> Connected => [.. _sessions.Keys];

    /// <summary>Ends the node's stream now (its certificate was revoked).</summary>
    public void Disconnect(string node)
    {
        if (_sessions.TryRemove(node, out var session))
        {
            session.Close();
        }
    }

    /// <summary>Sends every node connected here its current goal state (another controller changed placements, and which nodes they touch is not known here).</summary>
    public void NotifyAll() => Notify([.. _sessions.Keys]);

    /// <summary>Sends each named node its current goal state.</summary>
    public void Notify(IEnumerable<string> nodes)
    {
        foreach (var node in nodes)
        {
            if (_sessions.TryGetValue(node, out var session))
            {
                session.Changed();
            }
        }
    }

    /// <summary>
    /// Sends each named node its current goal state after the peer delay (what changed is one of their instances' peers).
    /// A node named twice is marked once (its delay is already running): callers need not make the names distinct.
    /// </summary>
    public void NotifyPeers(IEnumerable<string> nodes)
    {
        foreach (var node in nodes)
        {
            if (_sessions.TryGetValue(node, out var session))
            {
                session.ChangedAfter(_peerDelay, _time);
            }
        }
    }
}

public sealed class AgentSession
{
    // What wakes the stream's writer: a mark, not a queue; one pending wake stands for any number of them. What it is
    // woken for is in the two flags, set before the wake and taken after it.
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _closed = new();
    private readonly Func<string, GoalView> _compute;
    private int _changed;
    private int _keepalive;
    private int _delayed;

    public AgentSession(string node, Func<string, GoalView> compute)
    {
        Node = node;
        _compute = compute;
    }

    public string Node { get; }

    public CancellationToken Closed => _closed.Token;

    /// <summary>Marks the node's goal state as changed; the stream's writer sends it.</summary>
    public void Changed()
    {
        Volatile.Write(ref _changed, 1);
        _wake.Writer.TryWrite(true);
    }

    /// <summary>Marks a keepalive as due; the stream's writer sends it before any goal state.</summary>
    public void KeepaliveDue()
    {
        Volatile.Write(ref _keepalive, 1);
        _wake.Writer.TryWrite(true);
    }

    /// <summary>Marks the node's goal state as changed after <paramref name="delay"/>; changes meanwhile share the one mark.</summary>
    public void ChangedAfter(TimeSpan delay, TimeProvider time)
    {
        if (Interlocked.Exchange(ref _delayed, 1) == 0)
        {
            _ = MarkLaterAsync(delay, time);
        }
    }

    private async Task MarkLaterAsync(TimeSpan delay, TimeProvider time)
    {
        try
        {
            await Task.Delay(delay, time, Closed).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        // Cleared before the mark: a change after this point starts a delay of its own, so none is left unsent.
        Volatile.Write(ref _delayed, 0);
        Changed();
    }

    /// <summary>Whether a change or a keepalive is marked and not taken yet (the writer then takes it without waiting).</summary>
    public bool Pending => Volatile.Read(ref _changed) == 1 || Volatile.Read(ref _keepalive) == 1;

    /// <summary>Waits until the goal state may have changed or a keepalive is due; false once the session is closed.</summary>
    public ValueTask<bool> WaitForChangeAsync(CancellationToken cancellationToken) => _wake.Reader.WaitToReadAsync(cancellationToken);

    /// <summary>Whether a keepalive was due (taking it); clears the wake first, so one marked meanwhile wakes the writer again.</summary>
    public bool TakeKeepalive()
    {
        _wake.Reader.TryRead(out _);
        return Interlocked.Exchange(ref _keepalive, 0) == 1;
    }

    /// <summary>
    /// The node's goal state as the store has it now, if a change was marked since the last one taken. The mark is
    /// cleared before the store is read, so a change made meanwhile marks it again and is sent next; one writer takes
    /// them in turn, so each goal state sent is computed from a store view at least as new as the one before it.
    /// </summary>
    public GoalView? TakeChanged()
    {
        _wake.Reader.TryRead(out _);
        return Interlocked.Exchange(ref _changed, 0) == 1 ? _compute(Node) : null;
    }

    public void Close()
    {
        _wake.Writer.TryComplete();
        _closed.Cancel();
    }
}
