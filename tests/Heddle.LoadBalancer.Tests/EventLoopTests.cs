using System.Net;
using System.Net.Sockets;
using Heddle.LoadBalancer.L4.Linux;

namespace Heddle.LoadBalancer.Tests;

public sealed class EventLoopTests
{
    [Fact]
    public async Task ABusyPollingLoop_WithNothingToDo_Sleeps_AndWakesForWorkAndTimers()
    {
        using var loop = new EventLoop("busy-poll-test", TimeSpan.FromMicroseconds(200));
        var thread = Directory.GetDirectories("/proc/self/task").Single(t => File.ReadAllText(Path.Combine(t, "comm")).Trim() == "busy-poll-test");

        await loop.InvokeAsync(() => { }).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(await SleepsWithin(thread, TimeSpan.FromSeconds(10)), "the loop polled on with nothing to do: it must sleep once its polling time has passed");

        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await loop.InvokeAsync(() => loop.Schedule(loop.Register(new TimerOnly(fired)), TimeSpan.FromMilliseconds(20), cookie: 7)).WaitAsync(TimeSpan.FromSeconds(10));
        await fired.Task.WaitAsync(TimeSpan.FromSeconds(10)); // a timer set while it slept wakes it
        Assert.True(await SleepsWithin(thread, TimeSpan.FromSeconds(10)));
    }

    /// <summary>Whether the thread is seen asleep (state S in /proc) before the deadline: a loop spinning for ever never is.</summary>
    private static async Task<bool> SleepsWithin(string thread, TimeSpan deadline)
    {
        var until = DateTime.UtcNow + deadline;
        while (DateTime.UtcNow < until)
        {
            var stat = File.ReadAllText(Path.Combine(thread, "stat"));
            if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('S'))
            {
                return true;
            }

            await Task.Delay(5);
        }

        return false;
    }

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
