using System.Text.Json;
using Heddle.Controller.Store;

namespace Heddle.Controller.Tests.Store;

/// <summary>An instance's state is a closed set in code, the same word in the store as when it was a string, and what an agent names is checked.</summary>
public sealed class InstanceStateJsonTests
{
    [Fact]
    public void EveryState_IsStoredByItsWord_AndReadBack()
    {
        foreach (var state in Enum.GetValues<InstanceState>())
        {
            var json = JsonSerializer.Serialize(state, KvClusterStore.Format);

            Assert.Equal($"\"{state}\"", json);
            Assert.Equal(state, JsonSerializer.Deserialize<InstanceState>(json, KvClusterStore.Format));
        }
    }

    [Fact]
    public void ARecordWrittenWithAWordNoAgentSaysNow_ReadsAsPending_AndTheListingStillWorks()
    {
        const string written = """
            {"service":"shop","role":"web","index":0,"upgradeDomain":0,"node":"n1","cpus":[1],"memoryMiB":64,"generation":3,"revision":1,
             "state":"Exploded","ports":{}}
            """;

        var instance = JsonSerializer.Deserialize<InstanceRecord>(written, KvClusterStore.Format)!;

        Assert.Equal(InstanceState.Pending, instance.State);
        Assert.Equal(InstanceState.Ready, JsonSerializer.Deserialize<InstanceRecord>(written.Replace("Exploded", "Ready"), KvClusterStore.Format)!.State);
    }

    [Theory]
    [InlineData("Ready", InstanceState.Ready)]
    [InlineData("Faulted", InstanceState.Faulted)]
    [InlineData("ready", null)]
    [InlineData("3", null)]
    [InlineData("Unplaced", null)]
    [InlineData("", null)]
    [InlineData("Ready, Faulted", null)]
    public void Parse_TakesOnlyTheWordsAnAgentReports(string word, InstanceState? expected) => Assert.Equal(expected, InstanceStateWords.Parse(word));
}
