using System.Net;
using System.Net.Sockets;
using Heddle.LoadBalancer.L4.Linux;
using Heddle.Testing;

namespace Heddle.LoadBalancer.Tests;

public sealed class EventLoopTests
{
    [Fact]
    public async Task ABusyPollingLoop_WithNothingToDo_Sleeps_AndWakesForWorkAndTimers()
    {
        using var loop = new EventLoop("busy-poll-test", TimeSpan.FromMicroseconds(200));
        var thread = Directory.GetDirectories("/proc/self/task").Single(t => File.ReadAllText(Path.Combine(t, "comm")).Trim() == "busy-poll-test");

        await loop.InvokeAsync(() => { }).WaitAsync(TimeSpan.FromSeconds(10));
        await SleepsWithin(thread, TimeSpan.FromSeconds(10));

        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await loop.InvokeAsync(() => loop.Schedule(loop.Register(new TimerOnly(fired)), TimeSpan.FromMilliseconds(20), cookie: 7)).WaitAsync(TimeSpan.FromSeconds(10));
        await fired.Task.WaitAsync(TimeSpan.FromSeconds(10)); // a timer set while it slept wakes it
        await SleepsWithin(thread, TimeSpan.FromSeconds(10));
    }

    /// <summary>Waits until the thread is seen asleep (state S in /proc): a loop spinning for ever never is, and the wait times out.</summary>
    private static Task SleepsWithin(string thread, TimeSpan deadline) =>
        Poll.UntilAsync(() => File.ReadAllText(Path.Combine(thread, "stat")) is var stat && stat[(stat.LastIndexOf(')') + 2)..].StartsWith('S'), deadline,
            "the loop asleep once its polling time has passed");

    private sealed class TimerOnly(TaskCompletionSource fired) : IEventHandler
    {
        public void OnEvent(int side, uint events)
        {
        }

        public void OnTimer(int cookie) => fired.TrySetResult();

        public void OnFault(Exception error) => fired.TrySetException(error);
    }

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
