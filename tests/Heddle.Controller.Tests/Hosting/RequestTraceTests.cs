using Heddle.Controller.Hosting;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;
using Heddle.Testing;
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

    [Fact]
    public async Task ACommitOnTheCallsPath_TellsTheStoresQueue_ItsOwnWrite_TheCopy_AndTheSubscribers()
    {
        await using var mirror = await KvMirror.StartAsync(new InMemoryKeyValueStore());
        RequestTrace? trace = null;
        await Task.Run(async () =>
        {
            trace = RequestTrace.Begin();
            RequestTrace.Mark("read");
            await mirror.CommitThenAsync(new KvBatchItem([], [KvWrite.Put("a", [1])]), _ => [], ChangeSource.Here);
        });

        Assert.Matches(@"^read \d+ ms, queued for the store's writer \d+ ms, written with \d+ other commit\(s\) in one transaction \d+ ms, committed to the store \d+ ms, "
            + @"taken into the controller's copy \d+ ms, told to the views and reconcilers \d+ ms$", trace!.ToString());
    }
}
