using System.Net;
using System.Net.Sockets;
using Heddle.LoadBalancer.L4.Linux;

namespace Heddle.LoadBalancer.Tests;

public sealed class EventLoopTests
{
    [Fact]
    public void WorkPostedAfterDispose_IsDropped_AndWritesToNoDescriptor()
    {
        var loop = new EventLoop("test");
        loop.Dispose();

        // The loop's descriptors are closed; new sockets usually get their numbers back. A late post (a drain timer
        // that fired as the listener went away) must not write its wake-up into whatever now has that number.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        using var server = listener.Accept();
        var ran = false;

        loop.Post(() => ran = true);

        Assert.False(ran);
        Assert.Equal(0, client.Available);
        Assert.Equal(0, server.Available);
        Assert.True(loop.InvokeAsync(() => { }).IsCanceled, "waiting on a disposed loop ends at once");
    }
}
