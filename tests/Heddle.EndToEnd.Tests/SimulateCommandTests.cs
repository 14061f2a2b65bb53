using System.Text.Json;

using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

public sealed class SimulateCommandTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("heddle-sim-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private string Write(string name, string content)
    {
        var path = Path.Combine(_work, name);
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void Simulate_IssueExample_ReportsJsonAndWritesThePlan()
    {
        var cluster = Write("cluster.yaml", """
            nodes:
              - { name: n1, faultDomain: rack1, cores: 16, threadsPerCore: 2, memoryMiB: 131072, labels: { ssd: "true" } }
            generate:
              - { count: 100, prefix: g, faultDomains: 20, cores: 16, threadsPerCore: 2, memoryMiB: 131072 }
            """);
        var trace = Write("trace.csv", "op,tenant,service,role,instances,cores,memoryMiB,upgradeDomains\n" +
            "deploy,contoso,shop,web,12,2,4096,5\ndeploy,contoso,shop,db,3,4,8192,3,ssd=true\nscale,contoso,shop,web,20,,,\ndeploy,fabrikam,site,web,7,1,1024,3\ndelete,fabrikam,site,,,,,\n");
        var plan = Path.Combine(_work, "plan.json");

        var result = Heddle.Run("simulate", "--cluster", cluster, "--trace", trace, "--seed", "3", "--plan", plan, "-o", "json");

        Assert.True(result.ExitCode == 0, result.ToString());
        using var report = JsonDocument.Parse(result.Stdout);
        Assert.Equal(101, report.RootElement.GetProperty("nodes").GetInt32());
        Assert.Equal(23, report.RootElement.GetProperty("standingInstances").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("unplaced").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("hardRuleViolations").GetInt32());
        Assert.True(report.RootElement.GetProperty("maxFaultDomainSkew").GetInt32() <= 1);
        Assert.True(report.RootElement.GetProperty("placementsPerSecond").GetDouble() > 0);

        using var placements = JsonDocument.Parse(File.ReadAllText(plan));
        var all = placements.RootElement.EnumerateArray().ToList();
        Assert.Equal(23, all.Count);
        var first = all[0];
        foreach (var field in new[] { "tenant", "service", "role", "index", "upgradeDomain", "node", "faultDomain", "cpus", "memoryMiB" })
        {
            Assert.True(first.TryGetProperty(field, out _), $"plan entries need '{field}'");
        }

        Assert.All(all.Where(p => p.GetProperty("role").GetString() == "db"), p => Assert.Equal("n1", p.GetProperty("node").GetString()));
        var web = all.Where(p => p.GetProperty("role").GetString() == "web").ToList();
        Assert.Equal(20, web.Select(p => p.GetProperty("faultDomain").GetString()).Distinct().Count());
        Assert.All(web, p => Assert.Equal(2, p.GetProperty("cpus").GetArrayLength()));
        // Two CPUs of one instance on a fresh 16-core node are the two threads of one physical core: c and c + 16.
        Assert.All(web, p => Assert.Equal(16, Math.Abs(p.GetProperty("cpus")[0].GetInt32() - p.GetProperty("cpus")[1].GetInt32())));
    }

    [Fact]
    public void Simulate_SameSeed_WritesTheSamePlan()
    {
        var cluster = Write("c.yaml", "generate:\n  - { count: 50, prefix: g, faultDomains: 5, cores: 8, threadsPerCore: 2, memoryMiB: 65536 }\n");
        var trace = Write("t.csv", string.Join('\n', Enumerable.Range(0, 30).Select(i => $"deploy,t{i % 7},s{i},r,{1 + (i % 9)},{1 << (i % 4)},1024,3")));

        Heddle.Run("simulate", "--cluster", cluster, "--trace", trace, "--seed", "9", "--plan", Path.Combine(_work, "a.json"));
        Heddle.Run("simulate", "--cluster", cluster, "--trace", trace, "--seed", "9", "--plan", Path.Combine(_work, "b.json"));

        Assert.Equal(File.ReadAllText(Path.Combine(_work, "a.json")), File.ReadAllText(Path.Combine(_work, "b.json")));
    }

    [Fact]
    public void Simulate_Overfull_ExplainsUnplacedInstancesPerRule()
    {
        var cluster = Write("c.yaml", "nodes:\n  - { name: a, faultDomain: f1, cores: 2, memoryMiB: 4096 }\n  - { name: b, faultDomain: f2, cores: 2, memoryMiB: 1024 }\n");
        var trace = Write("t.csv", "deploy,t,s,web,5,1,2048,1\n");

        var result = Heddle.Run("simulate", "--cluster", cluster, "--trace", trace);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("unplaced     3 instances", result.Stdout);
        Assert.Contains("3 × 2 nodes: 2 not enough free memory", result.Stdout);
        Assert.Contains("hard rules   0 violations", result.Stdout);
    }

    [Fact]
    public void Simulate_BadTrace_ExitsOneWithPositions()
    {
        var cluster = Write("c.yaml", "nodes:\n  - { name: a, faultDomain: f1, cores: 2, memoryMiB: 4096 }\n");
        var trace = Write("t.csv", "deploy,t,s,web,5,1,2048,1\nscale,t,s,api,3,,,\n");

        var result = Heddle.Run("simulate", "--cluster", cluster, "--trace", trace);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{trace}:2:1: HD4002: t/s/api is not deployed", result.Stderr);
    }
}
