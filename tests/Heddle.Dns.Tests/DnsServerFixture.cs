using System.Net;
using DnsClient;
using Heddle.Contracts.Api;
using Heddle.Dns;
using Heddle.Dns.Server;

namespace Heddle.Dns.Tests;

/// <summary>A DNS server on loopback (port chosen by the OS) serving a fixed record set.</summary>
public sealed class DnsServerFixture : IAsyncLifetime
{
    public static readonly DnsRecordSet Records = new()
    {
        Serial = 7,
        Services =
        [
            new DnsService("hello", [],
            [
                new DnsRole("web",
                [
                    new DnsInstance(0, "127.0.1.1", [new DnsEndpoint("http", "tcp", 20000)]),
                    new DnsInstance(1, "127.0.1.2", [new DnsEndpoint("http", "tcp", 20000)]),
                    new DnsInstance(2, "127.0.1.3", [new DnsEndpoint("http", "tcp", 20001)]),
                ]),
                new DnsRole("worker", [new DnsInstance(0, "127.0.1.1", [])]),
            ]),
            new DnsService("shop", ["127.77.0.5"], [new DnsRole("api", [new DnsInstance(0, "::1", [new DnsEndpoint("grpc", "tcp", 9000)])])]),
            new DnsService("big", [], [new DnsRole("web", [.. Enumerable.Range(0, 60).Select(i => new DnsInstance(i, $"127.0.2.{i + 1}", []))])]),
        ],
    };

    public DnsServer Server { get; private set; } = null!;

    public Task InitializeAsync()
    {
        Server = DnsServer.Start(new DnsOptions { Port = 0 });
        Server.Update(Records);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    public LookupClient Client(bool tcpFallback = true, bool tcpOnly = false, int? ednsBuffer = null) =>
        new(new LookupClientOptions(new NameServer(Server.Endpoint))
        {
            UseCache = false,
            Retries = 1,
            Timeout = TimeSpan.FromSeconds(3),
            UseTcpFallback = tcpFallback,
            UseTcpOnly = tcpOnly,
            ThrowDnsErrors = false,
            ContinueOnDnsError = false,
            ExtendedDnsBufferSize = ednsBuffer ?? 1232,
            ContinueOnEmptyResponse = false,
        });

    public IPEndPoint Endpoint => Server.Endpoint;
}
