using System.Text.Json;
using Heddle.Controller.Store;

namespace Heddle.Controller.Tests.Store;

/// <summary>
/// A node record's condition is a closed set in code and the same word in the store as when it was a string; its cores
/// read back as the lists they were written as (kept as arrays in memory), and a list that is not of integers is refused.
/// </summary>
public sealed class NodeRecordJsonTests
{
    [Fact]
    public void Deserialize_ARecordWrittenWithAStringCondition_ReadsIt()
    {
        const string written = """
            {"name":"n1","address":"127.0.0.1","faultDomain":"fd1","labels":{},"memoryMiB":1024,"cores":[[0]],"logUrl":null,
             "isolation":null,"drivers":["process"],"hostImage":null,"condition":"Draining","lastSeen":"2026-12-05T08:00:00+00:00"}
            """;

        var node = JsonSerializer.Deserialize<NodeRecord>(written, KvClusterStore.Format)!;

        Assert.Equal(NodeCondition.Draining, node.Condition);
    }

    [Theory]
    [InlineData(NodeCondition.Ready, "Ready")]
    [InlineData(NodeCondition.Down, "Down")]
    [InlineData(NodeCondition.Draining, "Draining")]
    public void Serialize_ACondition_WritesTheWordAsBefore(NodeCondition condition, string word)
    {
        var node = new NodeRecord
        {
            Name = "n1", Address = "127.0.0.1", FaultDomain = "fd1", Labels = new Dictionary<string, string>(), MemoryMiB = 1024, Cores = [[0]],
            Condition = condition, LastSeen = DateTimeOffset.UnixEpoch,
        };

        Assert.Contains($"\"condition\":\"{word}\"", JsonSerializer.Serialize(node, KvClusterStore.Format), StringComparison.Ordinal);
    }

    [Fact]
    public void Cores_ReadBackAsWritten_AsArrays_AtAnyLength()
    {
        var many = Enumerable.Range(0, 200).ToList(); // beyond the reader's first buffer
        var node = new NodeRecord
        {
            Name = "n1", Address = "127.0.0.1", FaultDomain = "fd1", Labels = new Dictionary<string, string>(), MemoryMiB = 1024,
            Cores = [new List<int> { 0, 1 }, new List<int>(), many], Condition = NodeCondition.Ready, LastSeen = DateTimeOffset.UnixEpoch,
        };

        var json = JsonSerializer.Serialize(node, KvClusterStore.Format);
        Assert.Contains($"\"cores\":[[0,1],[],[{string.Join(',', many)}]]", json, StringComparison.Ordinal); // the JSON the default writer wrote
        var read = JsonSerializer.Deserialize<NodeRecord>(json, KvClusterStore.Format)!;

        Assert.True(read.SameAs(node));
        Assert.All(read.Cores, c => Assert.IsType<int[]>(c));
    }

    [Theory]
    [InlineData("[[0,\"1\"]]")]
    [InlineData("[[0.5]]")]
    [InlineData("[{\"a\":1}]")]
    [InlineData("[[0,[1]]]")]
    public void Cores_ThatAreNotListsOfIntegers_AreRefused(string cores)
    {
        var written = $$"""
            {"name":"n1","address":"127.0.0.1","faultDomain":"fd1","labels":{},"memoryMiB":1024,"cores":{{cores}},"condition":"Ready","lastSeen":"2026-12-05T08:00:00+00:00"}
            """;

        Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize<NodeRecord>(written, KvClusterStore.Format));
    }
}
