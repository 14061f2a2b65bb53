using Heddle.Controller.Hosting;
using Xunit;

namespace Heddle.Controller.Tests.Hosting;

public sealed class RequestTraceTests
{
    [Fact]
    public async Task Marks_MadeOnTheCallsFlow_AreToldInOrder_AndMarksElsewhereAreNot()
    {
        RequestTrace.Mark("outside any call"); // does nothing, and does not throw
        RequestTrace? trace = null;
        await Task.Run(async () =>
        {
            trace = RequestTrace.Begin();
            RequestTrace.Mark("read");
            await Task.Yield();
            RequestTrace.Mark("waited its turn");
            await Task.Run(() => RequestTrace.Mark("committed")); // awaited work of the same call flows with it
        });
        await Task.Run(() => RequestTrace.Mark("another call's step"));

        Assert.Matches(@"^read \d+ ms, waited its turn \d+ ms, committed \d+ ms$", trace!.ToString());
    }
}
