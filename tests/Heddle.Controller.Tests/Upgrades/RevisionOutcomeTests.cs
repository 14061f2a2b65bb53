using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;

namespace Heddle.Controller.Tests.Upgrades;

/// <summary>
/// Revision outcomes and event kinds are closed sets in the code and the same words in the store and the API: a record
/// stored before they were types reads, and writes back as it was.
/// </summary>
public sealed class RevisionOutcomeTests
{
    [Theory]
    [InlineData("InProgress")]
    [InlineData("Completed")]
    [InlineData("Paused")]
    [InlineData("Superseded")]
    [InlineData("RollingBack: upgrade domain 1: hello/web/1 exited with code 1")]
    [InlineData("RolledBack: rolled back by a user ('heddle upgrade rollback')")]
    [InlineData("RolledBack: ")]
    public void Parse_WordsStoredBefore_ReadBackAsTheSameWords(string words) =>
        Assert.Equal(words, RevisionOutcome.Parse(words).ToString());

    [Fact]
    public void Parse_WordsOfNoState_Throw() =>
        Assert.Throws<FormatException>(() => RevisionOutcome.Parse("Finished"));

    [Fact]
    public void States_AreTheWordsOfTheUpgradeStates_AndSuperseded() =>
        Assert.Equal([UpgradeStates.InProgress, UpgradeStates.Completed, UpgradeStates.Paused, UpgradeStates.RollingBack, UpgradeStates.RolledBack, "Superseded"],
            Enum.GetNames<RevisionState>());

    [Fact]
    public void RevisionRecord_StoredBefore_ReadsTyped_AndWritesTheSameJson()
    {
        const string stored = """{"service":"hello","number":3,"packageSha256":"abc","configuration":"c","created":"2026-12-05T08:00:00+00:00","changes":"package","outcome":"RolledBack: failed"}""";

        var revision = JsonSerializer.Deserialize<RevisionRecord>(stored, KvClusterStore.Format)!;

        Assert.Equal(new RevisionOutcome(RevisionState.RolledBack, "failed"), revision.Outcome);
        Assert.Equal(stored, JsonSerializer.Serialize(revision, KvClusterStore.Format));
    }

    [Fact]
    public void Walk_Outcome_IsTheWordsHistoryShowed()
    {
        var walk = new UpgradeWalk
        {
            Revision = 2, Previous = 1, Order = [0, 1], Position = 1, Phase = WalkPhase.RolledBack, Started = DateTimeOffset.UnixEpoch, PhaseStarted = DateTimeOffset.UnixEpoch,
            Policy = new Heddle.Model.Configuration.UpgradePolicy(), RollingBack = true, Reason = "upgrade domain 0: boom",
        };

        Assert.Equal("RolledBack: upgrade domain 0: boom", walk.Outcome.ToString());
        Assert.Equal("Paused", (walk with { Phase = WalkPhase.Paused }).Outcome.ToString());
    }

    [Fact]
    public void EventKinds_AreStoredAsTheWordsTheyHadAsConstants()
    {
        string[] words =
        [
            "DeploymentAccepted", "ImageImported", "SlotsSwapped", "VipMoved", "VipUnusable", "VipOwnerChanged", "BalancerJoined", "BalancerLeft", "BalancerGone",
            "ImageDeleted", "InstancePlaced", "InstanceMoved", "InstanceRemoved", "PlacementFailed", "InstanceState", "NodeJoined", "NodeRemoved", "NodeRefused",
            "NodeEnrolled", "TokenCreated", "TokenRevoked", "QuotaChanged", "NodeDown", "NodeUp", "ServiceDeleting", "ServiceDeleted", "InstanceDraining",
            "UpgradeStarted", "UpgradeDomainStarted", "UpgradeDomainUpdating", "UpgradeDomainHealthy", "UpgradeDomainFailed", "UpgradeRollingBack",
            "UpgradeRolledBack", "UpgradeCompleted", "UpgradePaused", "UpgradeResumed", "LeaderElected", "MachineAdded", "MachineRemoved",
            "MachineHostImageSet", "MachineBooted", "UnknownMachineBooted", "HostImageAdded", "HostImageDeleted",
            "HostRolloutStarted", "HostNodeDraining", "HostNodeRebooting", "HostNodeBack", "HostNodeHealthy", "HostRebootRefused", "HostRolloutPaused",
            "HostRolloutResumed", "HostRolloutRollingBack", "HostRolloutRolledBack", "HostRolloutCompleted", "HostRolloutFailed", "InstanceReturned",
        ];

        Assert.Equal(words, Enum.GetNames<EventKind>());
    }
}
