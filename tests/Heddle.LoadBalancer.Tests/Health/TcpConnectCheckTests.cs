using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Heddle.LoadBalancer.Health;

namespace Heddle.LoadBalancer.Tests.Health;

/// <summary>The balancer's TCP probe: a backend that accepts passes, one that refuses or does not answer in time fails, and a stopped probe ends at once.</summary>
public sealed class TcpConnectCheckTests
{
    [Fact]
    public async Task AListeningBackend_Passes()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();

        Assert.True(await TcpConnectCheck.ConnectsAsync((IPEndPoint)listener.LocalEndpoint, TimeSpan.FromSeconds(5), TimeProvider.System, CancellationToken.None));
    }

    [Fact]
    public async Task ABackendThatRefuses_Fails_WithoutWaitingForTheTimeout()
    {
        // Bound and not listening: the port is this test's, and a connection to it is refused.
        using var bound = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        bound.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var started = Stopwatch.StartNew();

        Assert.False(await TcpConnectCheck.ConnectsAsync((IPEndPoint)bound.LocalEndPoint!, TimeSpan.FromMinutes(5), TimeProvider.System, CancellationToken.None));
        Assert.True(started.Elapsed < TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task ABackendThatDoesNotAnswer_FailsAtTheTimeout_AndAStoppedProbeEndsAtOnce()
    {
        // A listener with a backlog of 0 holds one connection not yet accepted; with it held, the kernel drops further SYNs
        // unanswered and a connection stays pending.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        using var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await filler.ConnectAsync(endpoint).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.False(await TcpConnectCheck.ConnectsAsync(endpoint, TimeSpan.FromMilliseconds(200), TimeProvider.System, CancellationToken.None));

        using var stop = new CancellationTokenSource();
        var probe = TcpConnectCheck.ConnectsAsync(endpoint, TimeSpan.FromMinutes(5), TimeProvider.System, stop.Token).AsTask();
        Assert.False(probe.IsCompleted);
        await stop.CancelAsync();
        Assert.False(await probe.WaitAsync(TimeSpan.FromSeconds(30)));
    }
}
