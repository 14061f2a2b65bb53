using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Diagnostics.Metrics;
using Heddle.Contracts.Api;
using Heddle.Dns.Metrics;
using Heddle.Dns.Zone;

namespace Heddle.Dns.Server;

/// <summary>
/// The authoritative DNS server for the cluster zone, on UDP and TCP. UDP queries are read by dedicated threads
/// with the allocation-free socket calls; TCP queries are length-prefixed, several per connection. The zone is an
/// immutable compiled snapshot swapped whole by <see cref="Update"/>, so answers never see half a change, and a
/// server that loses its source of records keeps answering the last ones it had. TCP connections are held in a
/// <see cref="TcpConnectionTable"/>: capped per client address and in total, the longest idle closed for a newcomer.
/// </summary>
public sealed class DnsServer : IAsyncDisposable
{
    private readonly DnsOptions _options;
    private readonly Socket _udp;
    private readonly TcpListener _tcp;
    private readonly List<Thread> _workers = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly TcpConnectionTable _connections;
    private readonly IReadOnlyList<IPAddress> _nameServers;
    private readonly DnsQueryCounters _tcpCounters = new();
    private volatile CompiledZone _zone;

    private DnsServer(DnsOptions options, Socket udp, TcpListener tcp, IMeterFactory? meters)
    {
        _options = options;
        _udp = udp;
        _tcp = tcp;
        _connections = new TcpConnectionTable(options.MaxTcpConnections, options.MaxTcpConnectionsPerClient);
        Endpoint = (IPEndPoint)udp.LocalEndPoint!;
        _nameServers = [Endpoint.Address];
        _zone = CompiledZone.Build(new DnsRecordSet { Serial = 1, Services = [] }, options, _nameServers);
        var counters = Enumerable.Range(0, options.UdpWorkers).Select(_ => new DnsQueryCounters()).ToArray();
        if (meters is not null)
        {
            _ = new DnsMetrics(meters, counters, _tcpCounters, () => _zone.Serial);
        }

        for (var i = 0; i < options.UdpWorkers; i++)
        {
            var mine = counters[i];
            var worker = new Thread(() => ServeUdp(mine)) { IsBackground = true, Name = $"heddle-dns-udp-{i}" };
            _workers.Add(worker);
            worker.Start();
        }

        // On the thread pool, not on the starter's synchronisation context (a test runner's has two threads, and the
        // accept loop and every connection would queue behind whatever blocks them).
        _acceptLoop = Task.Run(AcceptTcpAsync);
    }

    /// <summary>The address and port the server answers on (UDP and TCP).</summary>
    public IPEndPoint Endpoint { get; }

    public string Zone => _zone.Zone;

    public long Serial => _zone.Serial;

    /// <summary>Binds and starts answering; with <paramref name="meters"/>, its counters are instruments of that scope (meter <c>Heddle.Dns</c>).</summary>
    public static DnsServer Start(DnsOptions options, IMeterFactory? meters = null)
    {
        options.Validate();
        var address = IPAddress.Parse(options.ListenAddress);
        // UDP and TCP share one port number. When the OS picks it (port 0) for UDP, the same number can be taken for
        // TCP; then another pair is tried.
        for (var attempt = 1; ; attempt++)
        {
            var udp = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp)
            {
                Blocking = true,
                ReceiveTimeout = 250, // so the workers notice a stop
                ReceiveBufferSize = 4 << 20,
                SendBufferSize = 4 << 20,
            };
            udp.Bind(new IPEndPoint(address, options.Port));
            var port = ((IPEndPoint)udp.LocalEndPoint!).Port;
            var tcp = new TcpListener(address, port);
            tcp.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            try
            {
                tcp.Start(backlog: 512);
                return new DnsServer(options, udp, tcp, meters);
            }
            catch (SocketException) when (options.Port == 0 && attempt < 20)
            {
                udp.Dispose();
            }
            catch
            {
                udp.Dispose();
                throw;
            }
        }
    }

    /// <summary>Replaces the records served. Cheap for readers: one reference swap after compiling.</summary>
    public void Update(DnsRecordSet records) => _zone = CompiledZone.Build(records, _options, _nameServers, _zone);

    private void ServeUdp(DnsQueryCounters counters)
    {
        if (BatchedUdp.IsSupported)
        {
            BatchedUdp.Serve(_udp, () => _zone, counters, _stop.Token);
            return;
        }

        var query = new byte[DnsResponder.MaxUdpPayload];
        var response = new byte[DnsResponder.ResponseBufferSize];
        var peer = new SocketAddress(_udp.AddressFamily);
        while (!_stop.IsCancellationRequested)
        {
            int received;
            try
            {
                received = _udp.ReceiveFrom(query, SocketFlags.None, peer);
            }
            catch (SocketException) when (!_stop.IsCancellationRequested)
            {
                continue; // e.g. a peer's ICMP error reported on this socket: nothing to answer
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            var length = DnsResponder.Respond(query.AsSpan(0, received), response, _zone, overTcp: false);
            if (length <= 0)
            {
                counters.Dropped();
            }
            else
            {
                counters.Count(response.AsSpan(0, length));
                try
                {
                    _udp.SendTo(response.AsSpan(0, length), SocketFlags.None, peer);
                }
                catch (SocketException)
                {
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
            }
        }
    }

    private async Task AcceptTcpAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _tcp.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            var address = (client.Client.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
            var connection = _connections.TryAdmit(address, client.Client, out var evicted);
            if (evicted is not null)
            {
                Evict(evicted.Socket);
            }

            if (connection is null)
            {
                client.Dispose(); // this client holds its share already, or every connection is answering
                continue;
            }

            _ = ServeTcpAsync(client, connection);
        }
    }

    /// <summary>
    /// Closes the server's end with a FIN; the connection's own loop then reads the end of its stream and disposes
    /// the socket. Shutting down rather than disposing here leaves the socket to one owner, and the client sees an
    /// orderly close it can retry after (RFC 7766 §6.2.3), not a reset.
    /// </summary>
    private static void Evict(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // it ended on its own meanwhile
        }
    }

    private async Task ServeTcpAsync(TcpClient client, TcpConnectionTable.Connection connection)
    {
        try
        {
            using (client)
            {
                client.NoDelay = true;
                var stream = client.GetStream();
                var prefix = new byte[2];
                while (!_stop.IsCancellationRequested)
                {
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                    idle.CancelAfter(_options.TcpIdleTimeout);
                    await stream.ReadExactlyAsync(prefix, idle.Token);
                    if (!await AnswerAsync(stream, BinaryPrimitives.ReadUInt16BigEndian(prefix), connection, idle.Token))
                    {
                        return;
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or EndOfStreamException or ObjectDisposedException)
        {
        }
        finally
        {
            _connections.Remove(connection);
        }
    }

    /// <summary>Reads one query of <paramref name="length"/> bytes and writes its answer. False: close the connection.</summary>
    /// <remarks>
    /// The buffers are rented for one query, not held by the connection: an idle connection costs a few hundred
    /// bytes instead of 128 KiB, so a table full of idle ones, or a flood of connections churning through it, costs
    /// the server little memory and little garbage.
    /// </remarks>
    private async Task<bool> AnswerAsync(NetworkStream stream, int length, TcpConnectionTable.Connection connection, CancellationToken idle)
    {
        var query = ArrayPool<byte>.Shared.Rent(length);
        var response = ArrayPool<byte>.Shared.Rent(DnsResponder.ResponseBufferSize + 2);
        try
        {
            await stream.ReadExactlyAsync(query.AsMemory(0, length), idle);
            if (!_connections.StartAnswer(connection))
            {
                return false; // evicted while its query came in: the socket is shut down already
            }

            var answer = DnsResponder.Respond(query.AsSpan(0, length), response.AsSpan(2, DnsResponder.ResponseBufferSize), _zone, overTcp: true);
            if (answer == 0)
            {
                _tcpCounters.DroppedShared();
                return false; // not a query we answer: close rather than leave the client waiting
            }

            _tcpCounters.CountShared(response.AsSpan(2, answer));
            BinaryPrimitives.WriteUInt16BigEndian(response, (ushort)answer);
            await stream.WriteAsync(response.AsMemory(0, answer + 2), idle);
            _connections.EndAnswer(connection);
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(query);
            ArrayPool<byte>.Shared.Return(response);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _tcp.Stop();
        await _acceptLoop;
        foreach (var worker in _workers)
        {
            worker.Join(TimeSpan.FromSeconds(5));
        }

        _udp.Dispose();
    }
}
