using Heddle.Model.Diagnostics;
using Heddle.Placement.Simulation;

namespace Heddle.Placement.Tests.Simulation;

public sealed class SimulationInputTests
{
    private const string Cluster = """
        nodes:
          - { name: n1, faultDomain: rack1, cores: 16, threadsPerCore: 2, memoryMiB: 131072, labels: { ssd: "true" } }
        generate:
          - { count: 4, prefix: g, faultDomains: 2, cores: 4, threadsPerCore: 2, memoryMiB: 8192 }
        """;

    [Fact]
    public void ClusterFile_ExplicitAndGeneratedNodes_AreRead()
    {
        var bag = new DiagnosticBag();

        var nodes = ClusterFile.Parse(Cluster, "cluster.yaml", bag)!;

        Assert.Empty(bag.Items);
        Assert.Equal(["n1", "g1", "g2", "g3", "g4"], nodes.Select(n => n.Name));
        Assert.Equal(["rack1", "g-fd1", "g-fd2", "g-fd1", "g-fd2"], nodes.Select(n => n.FaultDomain));
        Assert.Equal([3, 19], nodes[0].Cores[3]);
        Assert.Equal("true", nodes[0].Labels["ssd"]);
        Assert.Equal(8, nodes[1].LogicalCpuCount);
    }

    [Fact]
    public void ClusterFile_DuplicateNodeName_IsReported()
    {
        var bag = new DiagnosticBag();

        Assert.Null(ClusterFile.Parse(Cluster + "\n  - { count: 1, prefix: g, faultDomains: 1, cores: 1, memoryMiB: 1 }\n", "cluster.yaml", bag));

        Assert.Equal((DiagnosticCodes.DuplicateNode, 5), (Assert.Single(bag.Items).Code, bag.Items[0].Location.Line));
    }

    [Fact]
    public void ClusterFile_MisspelledKey_IsReportedWithASuggestion()
    {
        var bag = new DiagnosticBag();

        Assert.Null(ClusterFile.Parse("nodes:\n  - { name: a, faultDomain: f, cores: 2, memoryMB: 10 }\n", "cluster.yaml", bag));

        Assert.Contains(bag.Items, d => d.Code == DiagnosticCodes.UnknownKey && d.Message.Contains("did you mean 'memoryMiB'?"));
        Assert.Contains(bag.Items, d => d.Code == DiagnosticCodes.MissingField && d.Message.Contains("memoryMiB"));
    }

    [Fact]
    public void Trace_IssueExample_IsRead()
    {
        var bag = new DiagnosticBag();
        var text = "op,tenant,service,role,instances,cores,memoryMiB,upgradeDomains\ndeploy,contoso,shop,web,12,2,4096,5\nscale,contoso,shop,web,20,,,\ndelete,contoso,shop,,,,,\n";

        var ops = TraceParser.Parse(text, "trace.csv", bag)!;

        Assert.Empty(bag.Items);
        Assert.Equal([TraceOpKind.Deploy, TraceOpKind.Scale, TraceOpKind.Delete], ops.Select(o => o.Kind));
        Assert.Equal((12, 2, 4096, 5), (ops[0].Instances, ops[0].Cpus, ops[0].MemoryMiB, ops[0].UpgradeDomains));
        Assert.Equal(20, ops[1].Instances);
        Assert.Null(ops[2].Role);
    }

    [Fact]
    public void Trace_Constraints_AreRead()
    {
        var ops = TraceParser.Parse("deploy,t,s,db,3,4,8192,3,ssd=true;zone=a\n", "trace.csv", new DiagnosticBag())!;

        Assert.Equal("a", ops[0].Constraints["zone"]);
    }

    [Theory]
    [InlineData("deploy,t,s,web,12,two,4096,5", 2, 19, "cores 'two' is not a whole number")]
    [InlineData("launch,t,s,web,1,1,1,1", 2, 1, "unknown op 'launch'")]
    [InlineData("deploy,t,s,web,1,1,1", 2, 1, "expected 8 or 9 comma-separated columns")]
    [InlineData("deploy,t,s,,1,1,1,1", 2, 12, "deploy needs a role")]
    [InlineData("scale,t,s,other,3,,,", 2, 1, "t/s/other is not deployed")]
    [InlineData("deploy,t,s,web,1,1,1,1", 2, 1, "t/s/web is already deployed")]
    [InlineData("delete,t,nothing,,,,,", 2, 1, "t/nothing is not deployed")]
    public void Trace_BadLine_IsReportedWithLineAndColumn(string line, int lineNumber, int column, string message)
    {
        var bag = new DiagnosticBag();

        Assert.Null(TraceParser.Parse($"deploy,t,s,web,1,1,1,1\n{line}\n", "trace.csv", bag));

        var d = Assert.Single(bag.Items);
        Assert.Equal((lineNumber, column), (d.Location.Line, d.Location.Column));
        Assert.Contains(message, d.Message);
    }

    [Fact]
    public void Simulator_ScaleUpAfterAFailure_PlacesTheMissingInstancesAndKeepsTheOthers()
    {
        var nodes = ClusterFile.Parse("nodes:\n  - { name: a, faultDomain: f1, cores: 2, memoryMiB: 4096 }\n  - { name: b, faultDomain: f2, cores: 2, memoryMiB: 4096 }\n", "c.yaml", new DiagnosticBag())!;
        var state = new Cluster.ClusterState(nodes, seed: 1);
        var simulator = new Simulator(state, new IndexedAllocator(state));
        var ops = TraceParser.Parse("deploy,t,s,web,5,1,512,5\ndelete,t,s,,,,,\ndeploy,t,s2,web,3,1,512,3\nscale,t,s2,web,4,,,\n", "t.csv", new DiagnosticBag())!;

        simulator.Apply(ops[0]);
        var first = simulator.Report();
        simulator.Apply(ops[1]);
        simulator.Apply(ops[2]);
        var kept = state.Placements.ToList();
        simulator.Apply(ops[3]);
        var report = simulator.Report();

        Assert.Equal(1, first.UnplacedCount);
        Assert.Equal(1.0, first.CpuUtilisationAtFirstFailure);
        Assert.Equal("2 nodes: 2 not enough free cores", first.Unplaced[0].Why);
        Assert.Equal(4, report.StandingInstances);
        Assert.All(kept, p => Assert.Contains(p, state.Placements));
        Assert.Empty(report.Violations);
        Assert.Equal(0, report.MaxFaultDomainSkew);
    }
}
