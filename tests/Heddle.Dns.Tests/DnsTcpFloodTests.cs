using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Heddle.Dns;
using Heddle.Dns.Server;
using Heddle.Testing;
using Xunit.Abstractions;

namespace Heddle.Dns.Tests;

/// <summary>
/// Idle TCP connections spread over many client addresses, each under the per-address cap, fill the connection
/// table; a new client is still answered because the server closes the connection idle the longest (RFC 7766 §6.2.3).
/// </summary>
public sealed class DnsTcpFloodTests(ITestOutputHelper output)
{
    private const int Addresses = 40;
    private const int PerAddress = 10;

    [Fact]
    public async Task IdleFloodFromFortyAddresses_DigTcpAnswers_AndTheOldestIdleAreClosedNotTheActiveOne()
    {
        // The default table and per-address cap; only the idle timeout is long, so that a connection found closed was
        // closed to make room and not for idling.
        var options = new DnsOptions { Port = 0, TcpIdleTimeout = TimeSpan.FromMinutes(5) };
        Assert.True(options.MaxTcpConnections < Addresses * PerAddress, "the flood must fill the default table");
        Assert.True(PerAddress < options.MaxTcpConnectionsPerClient, "each flooding address stays under the per-address cap");
        await using var server = DnsServer.Start(options);
        server.Update(DnsServerFixture.Records);
        var flood = new List<Socket>(Addresses * PerAddress);
        using var active = await ConnectAsync(IPAddress.Parse("127.1.1.1"), server.Endpoint);
        try
        {
            await AskAsync(active);
            for (var a = 1; a <= Addresses; a++)
            {
                for (var i = 0; i < PerAddress; i++)
                {
                    flood.Add(await ConnectAsync(IPAddress.Parse($"127.1.0.{a}"), server.Endpoint));
                }

                await AskAsync(active); // in use all along: opened first, but never the longest idle
            }

            var clock = Stopwatch.StartNew();
            var dig = ProcessRunner.Run("dig", ["@127.0.0.1", "-p", server.Endpoint.Port.ToString(), "+tcp", "+tries=1", "+short", "web.hello.heddle.internal"], TimeSpan.FromSeconds(10));
            output.WriteLine($"dig +tcp under {flood.Count} idle connections from {Addresses} addresses: {clock.ElapsedMilliseconds} ms, exit {dig.ExitCode}");
            Assert.True(dig.ExitCode == 0, $"dig +tcp under the flood: {dig}");
            Assert.Equal(["127.0.1.1", "127.0.1.2", "127.0.1.3"], dig.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());

            // Room was made for the rest of the flood, the active connection's first admission and dig's.
            var evicted = flood.Count + 2 - options.MaxTcpConnections;
            await Poll.UntilAsync(() => flood.Count(IsReadable) >= evicted, TimeSpan.FromSeconds(10), $"{evicted} idle connections closed");
            var closed = Enumerable.Range(0, flood.Count).Where(i => IsReadable(flood[i])).ToList();
            Assert.Equal(Enumerable.Range(0, evicted), closed); // the oldest, in the order they were opened
            var buffer = new byte[16];
            foreach (var i in closed)
            {
                Assert.Equal(0, flood[i].Receive(buffer)); // closed in order (FIN), not reset
            }

            await AskAsync(active);
        }
        finally
        {
            flood.ForEach(s => s.Dispose());
        }
    }

    private static async Task<Socket> ConnectAsync(IPAddress from, IPEndPoint server)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(from, 0));
            await socket.ConnectAsync(server);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Readable with nothing sent by the server: the server closed it.</summary>
    private static bool IsReadable(Socket socket) => socket.Poll(0, SelectMode.SelectRead);

    private static async Task AskAsync(Socket socket)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var query = DnsWireTypes.Query(0x4242, "web.hello.heddle.internal", DnsWireTypes.A, edns: null);
        var framed = new byte[query.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed, 2);
        await socket.SendAsync(framed, deadline.Token);
        var prefix = new byte[2];
        await ReceiveExactlyAsync(socket, prefix, deadline.Token);
        var response = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
        await ReceiveExactlyAsync(socket, response, deadline.Token);
        Assert.Equal(0x4242, BinaryPrimitives.ReadUInt16BigEndian(response));
    }

    private static async Task ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancel)
    {
        while (buffer.Length > 0)
        {
            var read = await socket.ReceiveAsync(buffer, cancel);
            if (read == 0)
            {
                throw new EndOfStreamException("the server closed the connection");
            }

            buffer = buffer[read..];
        }
    }
}
