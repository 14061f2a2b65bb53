using System.Net;
using System.Net.Sockets;
using DnsClient;
using Heddle.Dns;
using Heddle.Dns.Server;

namespace Heddle.Dns.Tests;

/// <summary>One client holding idle TCP connections cannot take the server's TCP slots from everyone else (RFC 7766).</summary>
public sealed class DnsTcpLimitTests
{
    [Fact]
    public async Task ThreeHundredIdleConnectionsFromOneClient_LeaveTcpAnsweringOthers()
    {
        await using var server = DnsServer.Start(new DnsOptions { Port = 0 });
        server.Update(DnsServerFixture.Records);
        var idle = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 300; i++)
            {
                var client = new TcpClient(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
                idle.Add(client);
                try
                {
                    await client.ConnectAsync(server.Endpoint);
                }
                catch (SocketException)
                {
                    // refused or reset: the server is allowed to say no to this client
                }
            }

            var other = new LookupClient(new LookupClientOptions(new NameServer(server.Endpoint)) { UseCache = false, UseTcpOnly = true, Retries = 0, Timeout = TimeSpan.FromSeconds(3) });
            var answer = await other.QueryAsync("web.hello.heddle.internal", QueryType.A);

            Assert.Equal(3, answer.Answers.Count);
        }
        finally
        {
            idle.ForEach(c => c.Dispose());
        }
    }
}
