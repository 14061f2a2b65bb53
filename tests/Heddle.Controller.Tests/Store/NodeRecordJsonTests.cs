using System.Text.Json;
using Heddle.Controller.Store;

namespace Heddle.Controller.Tests.Store;

/// <summary>
/// A node record's condition is a closed set in code and the same word in the store as when it was a string; its cores
/// read back as the lists they were written as (kept as arrays in memory), and a list that is not of integers is refused.
/// What nodes repeat (their topology, fault domain, drivers, isolation, labels) is decoded into one shared copy.
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

    private static string Written(string name, string faultDomain, string cores, string labels = "{}") => $$"""
        {"name":"{{name}}","address":"127.0.0.1","faultDomain":"{{faultDomain}}","labels":{{labels}},"memoryMiB":1024,"cores":{{cores}},"logUrl":null,
         "isolation":"runc and cgroups","drivers":["process","container"],"hostImage":null,"condition":"Ready","lastSeen":"2026-12-05T08:00:00+00:00"}
        """;

    [Fact]
    public void NodesOfOneKind_DecodedApart_HoldOneCopyOfWhatTheyRepeat()
    {
        var a = JsonSerializer.Deserialize<NodeRecord>(Written("a", "fd-shared-1", "[[0,4],[1,5],[2,6],[3,7]]"), KvClusterStore.Format)!;
        var b = JsonSerializer.Deserialize<NodeRecord>(Written("b", "fd-shared-1", "[[0,4],[1,5],[2,6],[3,7]]"), KvClusterStore.Format)!;

        Assert.Same(a.Cores, b.Cores);
        Assert.Same(a.FaultDomain, b.FaultDomain);
        Assert.Same(a.Drivers, b.Drivers);
        Assert.Same(a.Isolation, b.Isolation);
        Assert.Empty(a.Labels);
        Assert.Same(a.Labels, b.Labels);
    }

    [Fact]
    public void NodesOfAnotherKind_KeepTheirOwn_AndEveryValueReadsBackAsWritten()
    {
        var a = JsonSerializer.Deserialize<NodeRecord>(Written("a", "fd-shared-2", "[[0,4],[1,5]]", """{"zone":"z1","rack":"r7"}"""), KvClusterStore.Format)!;
        var b = JsonSerializer.Deserialize<NodeRecord>(Written("b", "fd-shared-3", "[[0],[1]]", """{"zone":"z1"}"""), KvClusterStore.Format)!;

        Assert.NotSame(a.Cores, b.Cores);
        Assert.Equal([[0, 4], [1, 5]], a.Cores.Select(c => c.ToArray()));
        Assert.Equal([[0], [1]], b.Cores.Select(c => c.ToArray()));
        Assert.Equal("fd-shared-2", a.FaultDomain);
        Assert.Equal("fd-shared-3", b.FaultDomain);
        Assert.Equal(["process", "container"], a.Drivers);
        Assert.Equal(new Dictionary<string, string> { ["zone"] = "z1", ["rack"] = "r7" }, a.Labels);
        Assert.Same(a.Labels["zone"], b.Labels["zone"]);
        var unset = JsonSerializer.Deserialize<NodeRecord>(Written("c", "fd-shared-2", "[[0]]", """{"zone":null}"""), KvClusterStore.Format)!;
        Assert.Null(unset.Labels["zone"]); // as the serializer's own dictionary read it: a record stored so still decodes

        var again = JsonSerializer.Serialize(a, KvClusterStore.Format);
        Assert.Contains("\"cores\":[[0,4],[1,5]]", again, StringComparison.Ordinal);
        Assert.Contains("\"labels\":{\"zone\":\"z1\",\"rack\":\"r7\"}", again, StringComparison.Ordinal);
        Assert.Contains("\"drivers\":[\"process\",\"container\"]", again, StringComparison.Ordinal);
        Assert.True(JsonSerializer.Deserialize<NodeRecord>(again, KvClusterStore.Format)!.SameAs(a));
    }

    [Theory]
    [InlineData("\"labels\":{\"zone\":1}")]
    [InlineData("\"labels\":[\"zone\"]")]
    [InlineData("\"drivers\":[\"process\",2]")]
    [InlineData("\"drivers\":\"process\"")]
    [InlineData("\"faultDomain\":7")]
    public void LabelsDriversOrAFaultDomainOfTheWrongShape_AreRefused(string part)
    {
        var written = $$"""
            {"name":"n1","address":"127.0.0.1","faultDomain":"fd1","labels":{},"memoryMiB":1024,"cores":[[0]],"drivers":["process"],"condition":"Ready","lastSeen":"2026-12-05T08:00:00+00:00",{{part}}}
            """;

        Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize<NodeRecord>(written, KvClusterStore.Format));
    }

    [Fact]
    public void APool_SharesItsFirstValuesOnly_AndHandsBackTheRestAsGiven()
    {
        var pool = new SharedValues.Pool<string>(StringComparer.Ordinal, capacity: 2);
        var first = pool.Share(new string('a', 3));
        var second = pool.Share(new string('b', 3));
        var third = new string('c', 3);

        Assert.Same(first, pool.Share(new string('a', 3)));
        Assert.Same(second, pool.Share(new string('b', 3)));
        Assert.Same(third, pool.Share(third));
        Assert.NotSame(third, pool.Share(new string('c', 3))); // not kept: the pool is full
    }
}
