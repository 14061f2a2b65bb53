using System.Net.Sockets;
using Grpc.Net.Client;

namespace Heddle.LoadBalancer.Announcing.Bgp;

/// <summary>
/// A gRPC channel to gobgpd's API on its unix socket (`--api-hosts unix://PATH`, which gobgpd 3.10 understands). A
/// unix socket is a file, so it is reached from any network namespace: the tests run gobgpd inside a host's namespace
/// and call it from the test process in the root one. The channel reconnects by itself after gobgpd restarts.
/// </summary>
internal static class GobgpChannel
{
    public static GrpcChannel Create(string socketPath) =>
        GrpcChannel.ForAddress("http://gobgpd", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectTimeout = TimeSpan.FromSeconds(2),
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            },
            DisposeHttpClient = true, // the unix-socket connection closes with the channel
        });
}
