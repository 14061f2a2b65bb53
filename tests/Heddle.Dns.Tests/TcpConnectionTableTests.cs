using System.Net;
using System.Net.Sockets;
using Heddle.Dns.Server;

namespace Heddle.Dns.Tests;

/// <summary>Who makes room when the DNS server's TCP table is full: the longest idle, never one answering, and never for an address over its cap.</summary>
public sealed class TcpConnectionTableTests : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public void Dispose() => _socket.Dispose();

    [Fact]
    public void TryAdmit_FullTable_EvictsTheLongestIdleInAdmissionOrder()
    {
        var table = new TcpConnectionTable(capacity: 3, perClient: 3);
        var held = Enumerable.Range(1, 3).Select(i => Admit(table, i)).ToList();

        var evicted = Enumerable.Range(4, 3).Select(i => { Assert.NotNull(table.TryAdmit(Address(i), _socket, out var e)); return e!; }).ToList();

        Assert.Equal(held, evicted);
        Assert.Equal(3, table.Count);
    }

    [Fact]
    public void TryAdmit_FullTable_SparesTheConnectionThatAnsweredLast()
    {
        var table = new TcpConnectionTable(capacity: 3, perClient: 3);
        var first = Admit(table, 1);
        var second = Admit(table, 2);
        Admit(table, 3);
        Assert.True(table.StartAnswer(first));
        table.EndAnswer(first);

        table.TryAdmit(Address(4), _socket, out var evicted);

        Assert.Same(second, evicted);
    }

    [Fact]
    public void TryAdmit_FullTable_NeverEvictsOneAnswering()
    {
        var table = new TcpConnectionTable(capacity: 2, perClient: 2);
        var answering = Admit(table, 1);
        var idle = Admit(table, 2);
        Assert.True(table.StartAnswer(answering));

        Assert.NotNull(table.TryAdmit(Address(3), _socket, out var evicted));
        Assert.Same(idle, evicted);
        Assert.False(table.StartAnswer(idle)); // its query arrived too late: it answers nothing on a closed socket
        table.EndAnswer(answering);
        Assert.Equal(2, table.Count);
    }

    [Fact]
    public void TryAdmit_FullTableAllAnswering_RefusesTheNewcomer()
    {
        var table = new TcpConnectionTable(capacity: 2, perClient: 2);
        Assert.True(table.StartAnswer(Admit(table, 1)));
        Assert.True(table.StartAnswer(Admit(table, 2)));

        Assert.Null(table.TryAdmit(Address(3), _socket, out var evicted));
        Assert.Null(evicted);
        Assert.Equal(2, table.Count);
    }

    [Fact]
    public void TryAdmit_AddressAtItsCap_IsRefusedAndEvictsNobody()
    {
        var table = new TcpConnectionTable(capacity: 3, perClient: 2);
        Admit(table, 1);
        Admit(table, 2);
        Admit(table, 2);

        Assert.Null(table.TryAdmit(Address(2), _socket, out var evicted));
        Assert.Null(evicted);
        Assert.Equal(3, table.Count);
    }

    [Fact]
    public void TryAdmit_OneAddressChurning_TakesAtMostItsCapOfPlacesFromOthers()
    {
        var table = new TcpConnectionTable(capacity: 8, perClient: 2);
        var others = Enumerable.Range(1, 8).Select(i => Admit(table, i)).ToHashSet();
        var own = new Queue<TcpConnectionTable.Connection>();
        var taken = 0;
        for (var round = 0; round < 100; round++)
        {
            if (table.TryAdmit(Address(99), _socket, out var evicted) is { } connection)
            {
                own.Enqueue(connection);
            }
            else
            {
                table.Remove(own.Dequeue()); // at its cap: close one and go again
            }

            taken += evicted is not null && others.Contains(evicted) ? 1 : 0;
        }

        Assert.Equal(2, taken);
    }

    [Fact]
    public void Remove_AfterEviction_FreesNoSecondPlace()
    {
        var table = new TcpConnectionTable(capacity: 1, perClient: 1);
        var first = Admit(table, 1);
        table.TryAdmit(Address(2), _socket, out var evicted);
        Assert.Same(first, evicted);

        table.Remove(first);

        Assert.Equal(1, table.Count);
        Assert.NotNull(table.TryAdmit(Address(1), _socket, out evicted)); // address 1 holds nothing any more
        Assert.NotNull(evicted);
    }

    private TcpConnectionTable.Connection Admit(TcpConnectionTable table, int client)
    {
        var connection = table.TryAdmit(Address(client), _socket, out var evicted);
        Assert.NotNull(connection);
        Assert.Null(evicted);
        return connection;
    }

    private static IPAddress Address(int client) => new([127, 1, 0, (byte)client]);
}
