using Heddle.Controller.Hosting;
using Heddle.Testing;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Heddle.Controller.Tests.Hosting;

public sealed class StallWatchTests
{
    [Fact]
    public async Task AWorkItemThatRunsLate_IsToldOnce_WithHowLate()
    {
        var capture = new LogCapture();
        using var factory = capture.For("controller", LogLevel.Warning);
        var queued = 0;
        Action? held = null;
        // The first work item is held (a starved pool) until the watch says it is late; every later one runs at once.
        using (var watch = new StallWatch(factory.CreateLogger("watch"), run =>
               {
                   if (Interlocked.Increment(ref queued) == 1)
                   {
                       Volatile.Write(ref held, run);
                   }
                   else
                   {
                       run();
                   }
               }, TimeSpan.FromMilliseconds(200)))
        {
            await Poll.UntilAsync(() => Task.FromResult(watch.Late), late => late, TimeSpan.FromSeconds(10), "the first work item late");
            Volatile.Read(ref held)!();
            // Three prompt items after the late one: a second warning would have come by then.
            await Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref queued)), n => n >= 4, TimeSpan.FromSeconds(10), "three more work items queued");
        }

        var line = Assert.Single(capture.Lines);
        Assert.Contains("The controller stalled: a work item waited", line);
        var waited = int.Parse(System.Text.RegularExpressions.Regex.Match(line, @"waited (\d+) ms").Groups[1].Value);
        Assert.InRange(waited, 200, 10_000); // at least the threshold it was held past
    }

    [Fact]
    public async Task APoolThatRunsItsWorkPromptly_IsNotTold()
    {
        var capture = new LogCapture();
        using var factory = capture.For("controller", LogLevel.Warning);
        var ran = 0;
        using (new StallWatch(factory.CreateLogger("watch"), run => { Interlocked.Increment(ref ran); run(); }, TimeSpan.FromMilliseconds(200)))
        {
            await Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref ran)), n => n >= 3, TimeSpan.FromSeconds(10), "three work items run");
        }

        Assert.Empty(capture.Lines);
    }
}
