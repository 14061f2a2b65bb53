using System.Net;
using System.Net.Sockets;

namespace Heddle.Dns.Server;

/// <summary>
/// The TCP connections the DNS server holds, with its two caps: per client address (RFC 7766 §6.2.2) and in total.
/// When the table is full, a newcomer takes the place of the connection idle the longest (RFC 7766 §6.2.3: a server
/// may close idle connections, preferring the least recently active), so connections held open and silent, even
/// spread over many addresses each under its cap, cannot deny TCP to everyone else.
/// </summary>
/// <remarks>
/// <para>
/// Idle connections are kept in a list by last activity, the longest idle at the head: admitting, evicting and
/// touching are O(1) under one lock, so an attacker opening connections as fast as it can costs the accept loop
/// nothing more per connection than before.
/// </para>
/// <para>
/// A connection is idle from its admission or from its last answer written until its next query has been read in
/// full; only then is it busy, and taken off the list until the answer is written, so an answer is never cut short
/// by an eviction. A client trickling a query a byte at a time stays idle, as old as its last answer: it cannot
/// keep its place by trickling, only the idle timeout or an eviction ends it.
/// </para>
/// <para>
/// The per-address cap is checked first and a refused newcomer evicts nobody. One address alone can therefore take
/// at most its cap of places from others: closing one of its own connections frees a place its next one takes
/// without an eviction. Only many addresses together can churn the table, and then the longest idle go first.
/// </para>
/// </remarks>
internal sealed class TcpConnectionTable(int capacity, int perClient)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<IPAddress, int> _perClient = [];
    private readonly LinkedList<Connection> _idle = new();
    private int _count;

    /// <summary>Connections held, idle and busy.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>
    /// Admits a connection from <paramref name="address"/>, or refuses it (null) when that address holds its share,
    /// or when the table is full of busy connections. When the table is full, <paramref name="evicted"/> is the
    /// connection idle the longest, already out of the table: the caller closes it.
    /// </summary>
    public Connection? TryAdmit(IPAddress address, Socket socket, out Connection? evicted)
    {
        evicted = null;
        lock (_lock)
        {
            var held = _perClient.GetValueOrDefault(address);
            if (held >= perClient)
            {
                return null;
            }

            if (_count >= capacity)
            {
                if (_idle.First is not { } oldest)
                {
                    return null; // every place is answering a query: refuse rather than cut an answer short
                }

                evicted = oldest.Value;
                RemoveLocked(evicted);
            }

            _perClient[address] = held + 1;
            _count++;
            var connection = new Connection(address, socket);
            _idle.AddLast(connection.Node);
            return connection;
        }
    }

    /// <summary>A query was read in full: the connection is busy until <see cref="EndAnswer"/>. False: it was evicted meanwhile, answer nothing.</summary>
    public bool StartAnswer(Connection connection)
    {
        lock (_lock)
        {
            if (connection.Removed)
            {
                return false;
            }

            _idle.Remove(connection.Node);
            return true;
        }
    }

    /// <summary>The answer was written: the connection is idle again, the most recently active.</summary>
    public void EndAnswer(Connection connection)
    {
        lock (_lock)
        {
            if (!connection.Removed && connection.Node.List is null)
            {
                _idle.AddLast(connection.Node);
            }
        }
    }

    /// <summary>The connection ended; nothing happens if it was evicted already.</summary>
    public void Remove(Connection connection)
    {
        lock (_lock)
        {
            if (!connection.Removed)
            {
                RemoveLocked(connection);
            }
        }
    }

    private void RemoveLocked(Connection connection)
    {
        connection.Removed = true;
        if (connection.Node.List is not null)
        {
            _idle.Remove(connection.Node);
        }

        _count--;
        if (_perClient.TryGetValue(connection.Address, out var held) && held > 1)
        {
            _perClient[connection.Address] = held - 1;
        }
        else
        {
            _perClient.Remove(connection.Address);
        }
    }

    /// <summary>One place in the table. Its fields are read and written under the table's lock only.</summary>
    internal sealed class Connection
    {
        public Connection(IPAddress address, Socket socket)
        {
            Address = address;
            Socket = socket;
            Node = new LinkedListNode<Connection>(this);
        }

        public IPAddress Address { get; }

        /// <summary>The server's end of the connection, which the caller shuts down on eviction.</summary>
        public Socket Socket { get; }

        internal LinkedListNode<Connection> Node { get; }

        internal bool Removed { get; set; }
    }
}
