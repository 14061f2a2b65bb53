using Heddle.Controller.Store;

namespace Heddle.Controller.Tests.Store;

/// <summary>What a report changes for the reconciler and for the instance's peers, as the change feed weighs it.</summary>
public sealed class ReportedStateTests
{
    private static ReportedState Report(InstanceState state, int restarts = 0, long revision = 1, Dictionary<string, int>? ports = null) =>
        new("web", 0, 1, state, restarts, revision, ports ?? []);

    [Fact]
    public void PeersSeeChanged_AFirstReportOfStarting_TellsThePeersNothing()
    {
        // The peers saw the placed instance as not ready and with no ports; a thousand instances starting must not cost
        // every node of their roles a goal state each.
        Assert.False(Report(InstanceState.Starting).PeersSeeChanged(null));
    }

    [Fact]
    public void PeersSeeChanged_AFirstReportOfReadyOrOfPorts_TellsThePeers()
    {
        Assert.True(Report(InstanceState.Ready).PeersSeeChanged(null));
        Assert.True(Report(InstanceState.Starting, ports: new() { ["http"] = 8080 }).PeersSeeChanged(null));
    }

    [Fact]
    public void PeersSeeChanged_ReadinessOrPortsChanged_TellsThePeers_AndRestartsAlone_DoNot()
    {
        Assert.True(Report(InstanceState.Ready).PeersSeeChanged(Report(InstanceState.Starting)));
        Assert.True(Report(InstanceState.Starting).PeersSeeChanged(Report(InstanceState.Ready)));
        Assert.True(Report(InstanceState.Ready, ports: new() { ["http"] = 8081 }).PeersSeeChanged(Report(InstanceState.Ready, ports: new() { ["http"] = 8080 })));
        Assert.False(Report(InstanceState.Ready, restarts: 1).PeersSeeChanged(Report(InstanceState.Ready)));
    }

    [Fact]
    public void ProgressChanged_AFirstReport_OrANewStateRestartOrRevision_QueuesTheService()
    {
        Assert.True(Report(InstanceState.Starting).ProgressChanged(null));
        Assert.True(Report(InstanceState.Ready).ProgressChanged(Report(InstanceState.Starting)));
        Assert.True(Report(InstanceState.Ready, restarts: 1).ProgressChanged(Report(InstanceState.Ready)));
        Assert.True(Report(InstanceState.Ready, revision: 2).ProgressChanged(Report(InstanceState.Ready)));
        Assert.False(Report(InstanceState.Ready).ProgressChanged(Report(InstanceState.Ready)));
    }
}
