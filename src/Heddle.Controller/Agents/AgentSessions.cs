using System.Collections.Concurrent;
using System.Threading.Channels;
using Heddle.Contracts.Agents;

namespace Heddle.Controller.Agents;

/// <summary>
/// The agents connected now, one stream each. A goal state is always whole, so a session keeps only the newest one
/// waiting: an agent that is slow to read never sees a stale state after a fresh one.
/// </summary>
public sealed class AgentSessions(GoalStates goals)
{
    private readonly ConcurrentDictionary<string, AgentSession> _sessions = new(StringComparer.Ordinal);

    public AgentSession Open(string node)
    {
        var session = new AgentSession(node);
        if (_sessions.TryGetValue(node, out var previous))
        {
            previous.Close();
        }

        _sessions[node] = session;
        Send(session);
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
        foreach (var node in nodes.Distinct(StringComparer.Ordinal))
        {
            if (_sessions.TryGetValue(node, out var session))
            {
                Send(session);
            }
        }
    }

    /// <summary>
    /// Computes and queues a node's goal state as one step per session: of two sends racing (a reconcile here, a change
    /// another controller made), the one queued last was computed last, from a store view at least as new, so an agent
    /// is never left with a goal older than one it was already given.
    /// </summary>
    private void Send(AgentSession session)
    {
        lock (session)
        {
            session.Push(goals.For(session.Node));
        }
    }
}

public sealed class AgentSession(string node)
{
    private readonly Channel<GoalState> _goals = Channel.CreateBounded<GoalState>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly CancellationTokenSource _closed = new();

    public string Node { get; } = node;

    public CancellationToken Closed => _closed.Token;

    public ChannelReader<GoalState> Goals => _goals.Reader;

    public void Push(GoalState goal) => _goals.Writer.TryWrite(goal);

    public void Close()
    {
        _goals.Writer.TryComplete();
        _closed.Cancel();
    }
}
