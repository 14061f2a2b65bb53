using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Trust;
using Heddle.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Trust;

/// <summary>
/// A node is refused when the controller cannot reach it at the address it says it has (a TCP connect to its log port):
/// at enrolment, and when it says hello from another address. Real sockets on loopback: every 127.0.0.0/8 address works
/// on lo, so a node can say one address while listening at another.
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class NodeReachabilityTests
{
    private const string Advice = "give --address an address the controller can reach (and let it reach the agent's --log-port there)";

    [Fact]
    public async Task Enrol_SayingAnAddressNothingListensOn_IsRefusedWithASentence_AndTheTokenIsNotUsedUp()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 0, containers: false);
        var token = JoinString.Parse(await cluster.Controller.CreateJoinStringAsync(uses: 1)).Token;
        // The agent listens at 127.0.0.3 but says it is at 127.0.0.2, where nothing listens on that port.
        using var listener = new TcpListener(IPAddress.Parse("127.0.0.3"), 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var channel = GrpcChannel.ForAddress(cluster.Controller.AgentUrl, new GrpcChannelOptions { HttpHandler = ClusterTrust.Handler(cluster.Controller.CaCertificate) });
        var client = new AgentService.AgentServiceClient(channel);

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.EnrollAsync(Request(token, "127.0.0.2", port)));

        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Equal($"node n7 says its address is 127.0.0.2, but the controller at 127.0.0.1 cannot reach 127.0.0.2:{port} (connection refused: nothing listens there): {Advice}",
            refused.Status.Detail);
        Assert.Contains(await cluster.Api.ListEventsAsync(), e => e.Kind == "NodeRefused" && e.Subject == "n7" && e.Message.Contains("cannot reach 127.0.0.2"));

        // The one-use token was not spent on the refusal: the node, at the address it listens on, enrols with it.
        var reply = await client.EnrollAsync(Request(token, "127.0.0.3", port));
        using var certificate = ClusterTrust.Load(reply.Certificate);
        Assert.Equal("n7", ClusterTrust.NameOf(certificate));
    }

    [Fact]
    public async Task Enrol_SayingAnAddressThatDoesNotAnswer_IsRefusedAfterTheReachTimeout()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 0, containers: false, configure: o => o with { NodeReachTimeout = TimeSpan.FromSeconds(1) });
        var token = JoinString.Parse(cluster.JoinString).Token;
        using var silent = SilentListener.Open(IPAddress.Parse("127.0.0.4"));
        var port = silent.Endpoint.Port;
        using var channel = GrpcChannel.ForAddress(cluster.Controller.AgentUrl, new GrpcChannelOptions { HttpHandler = ClusterTrust.Handler(cluster.Controller.CaCertificate) });
        var client = new AgentService.AgentServiceClient(channel);
        var clock = Stopwatch.StartNew();

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.EnrollAsync(Request(token, "127.0.0.4", port)));

        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Equal($"node n7 says its address is 127.0.0.4, but the controller at 127.0.0.1 cannot reach 127.0.0.4:{port} (no answer within 1 s): {Advice}", refused.Status.Detail);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(8));
    }

    [Fact]
    public async Task Hello_FromAnEnrolledNodeAtANewAddressNothingListensOn_IsRefusedWithTheSentence_AndTheNodeKeepsItsAddress()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        var n1 = cluster.Agents[0]!.Identity.Certificate;
        using var refusing = new RefusingPort(IPAddress.Parse("127.0.0.2"));
        var port = refusing.Port;
        using var channel = GrpcChannel.ForAddress(cluster.Controller.AgentUrl, new GrpcChannelOptions { HttpHandler = ClusterTrust.Handler(cluster.Controller.CaCertificate, () => n1) });
        using var call = new AgentService.AgentServiceClient(channel).Connect(deadline: DateTime.UtcNow.AddSeconds(10));

        await call.RequestStream.WriteAsync(new AgentMessage { Hello = new Hello { Node = new NodeInfo { Name = "n1", Address = "127.0.0.2", LogUrl = $"https://127.0.0.2:{port}/", MemoryMib = 1024 } } });
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.MoveNext());

        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Equal($"node n1 says its address is 127.0.0.2, but the controller at 127.0.0.1 cannot reach 127.0.0.2:{port} (connection refused: nothing listens there): {Advice}",
            refused.Status.Detail);
        Assert.Equal(cluster.NodeAddress(0), (await cluster.Api.ListNodesAsync()).Single().Address);
    }

    private static EnrollRequest Request(string token, string address, int port)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new EnrollRequest
        {
            JoinToken = token, NodeName = "n7", SigningRequest = new CertificateRequest("CN=n7", key, HashAlgorithmName.SHA256).CreateSigningRequestPem(),
            Address = address, LogPort = port,
        };
    }

    /// <summary>
    /// A listener that answers no new connection: it never accepts, and its accept queue is filled, so Linux drops
    /// further SYNs and a connect waits (as for a host behind a firewall that drops), unlike a closed port's reset.
    /// </summary>
    private sealed class SilentListener : IDisposable
    {
        private readonly List<Socket> _sockets = [];

        public IPEndPoint Endpoint { get; private set; } = null!;

        public static SilentListener Open(IPAddress address)
        {
            var silent = new SilentListener();
            try
            {
                var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                silent._sockets.Add(listener);
                listener.Bind(new IPEndPoint(address, 0));
                listener.Listen(0);
                var endpoint = silent.Endpoint = (IPEndPoint)listener.LocalEndPoint!;
                for (var i = 0; i < 16; i++)
                {
                    var client = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                    silent._sockets.Add(client);
                    using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                    try
                    {
                        client.ConnectAsync(endpoint, deadline.Token).AsTask().GetAwaiter().GetResult();
                    }
                    catch (OperationCanceledException)
                    {
                        return silent; // the queue is full: this connect got no answer
                    }
                }

                throw new InvalidOperationException($"16 connections to {endpoint} were all answered: its accept queue never filled");
            }
            catch
            {
                silent.Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            foreach (var socket in _sockets)
            {
                socket.Dispose();
            }
        }
    }
}
