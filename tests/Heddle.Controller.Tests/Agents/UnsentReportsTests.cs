using Heddle.Contracts.Agents;
using Heddle.Controller.Agents;

namespace Heddle.Controller.Tests.Agents;

/// <summary>What an agent stream reported and the store has not taken: the newest report per instance, within a bound.</summary>
public sealed class UnsentReportsTests
{
    private static InstanceReport Report(string id, string state) => new() { InstanceId = id, State = state, Generation = 1 };

    [Fact]
    public void AnAgentNamingTenThousandInstances_HasTheReportsBeyondTheBoundDropped_WhileThoseWaitingTakeTheirNewerReports()
    {
        var unsent = new UnsentReports(4096);
        var taken = Enumerable.Range(0, 10_000).Count(i => unsent.Offer(Report($"svc/web/{i}", "Starting")));

        Assert.Equal(4096, taken);
        Assert.Equal(4096, unsent.Count);
        Assert.True(unsent.Offer(Report("svc/web/7", "Ready")), "an instance already waiting takes its newer report beyond the bound");
        Assert.False(unsent.Offer(Report("svc/web/9999", "Ready")));
        var waiting = unsent.Snapshot();
        Assert.Equal(4096, waiting.Count);
        Assert.Equal("Ready", waiting.Single(r => r.InstanceId == "svc/web/7").State);

        foreach (var report in waiting)
        {
            unsent.Written(report);
        }

        Assert.Equal(0, unsent.Count);
        Assert.True(unsent.Offer(Report("svc/web/9999", "Ready")), "written reports make room again");
    }

    [Fact]
    public void AReportReplacedWhileItWasWritten_StaysForTheNextRound()
    {
        var unsent = new UnsentReports(16);
        unsent.Offer(Report("svc/web/0", "Downloading"));
        var writing = unsent.Snapshot().Single();

        unsent.Offer(Report("svc/web/0", "Ready"));
        unsent.Written(writing);

        Assert.Equal("Ready", unsent.Snapshot().Single().State);
    }

    [Fact]
    public void TheHellosSnapshot_IsBoundedLikeAnyReports()
    {
        var unsent = new UnsentReports(100, Enumerable.Range(0, 1_000).Select(i => Report($"svc/web/{i}", "Ready")));

        Assert.Equal(100, unsent.Count);
    }
}
