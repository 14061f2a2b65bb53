using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>A controller and three agents in this process deploy the hello sample for real.</summary>
[Collection(nameof(ClusterCollection))]
public sealed class DeploymentTests
{
    [Fact]
    public async Task Deploy_Sample_EveryInstanceReadyWithItsEnvironmentAndCpus()
    {
        await using var cluster = await TestCluster.StartAsync();

        await cluster.DeploySampleAsync();
        var service = await cluster.WaitUntilReadyAsync("hello", 4, TimeSpan.FromSeconds(60));

        var web = service.Instances.Where(i => i.Role == "web").ToList();
        Assert.Equal(3, web.Select(i => i.Node).Distinct().Count());
        using var http = new HttpClient();
        foreach (var instance in web)
        {
            var body = await http.GetStringAsync($"http://{instance.NodeAddress}:{instance.Ports["http"]}/");
            Assert.Equal($"hi from {instance.Id}\n", body);

            var agent = cluster.Agents.Single(a => a!.Options.NodeName == instance.Node)!;
            var expected = string.Join(',', instance.Cpus.Select(agent.Topology.RealCpu).Distinct().Order());
            Assert.Equal(expected, CpuList(Heddle.Agent.Node.NodeTopology.ParseList(AllowedCpus(instance.Pid))));

            var description = JsonDocument.Parse(File.ReadAllText(Path.Combine(agent.Supervisor.DirectoryOf(instance.Id)!, "app", "heddle-instance.json"))).RootElement;
            Assert.Equal(instance.Ports["http"], description.GetProperty("ports").GetProperty("http").GetInt32());
            Assert.Equal("hi", description.GetProperty("environment").GetProperty("HEDDLE_SETTING_GREETING").GetString());
            Assert.Equal(instance.Ports["http"].ToString(), description.GetProperty("environment").GetProperty("HEDDLE_PORT_HTTP").GetString());
            Assert.Equal(instance.Id, description.GetProperty("environment").GetProperty("HEDDLE_INSTANCE").GetString());
        }

        var events = await cluster.Api.ListEventsAsync();
        Assert.Contains(events, e => e.Kind == "DeploymentAccepted" && e.Subject == "hello");
        Assert.Equal(4, events.Count(e => e.Kind == "InstancePlaced"));
        Assert.Contains(events, e => e.Kind == "InstanceState" && e.Message.StartsWith("Ready", StringComparison.Ordinal));
    }

    private static string AllowedCpus(int pid) =>
        File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split(':')[1].Trim();

    private static string CpuList(IEnumerable<int> cpus) => string.Join(',', cpus.Order());
}

[CollectionDefinition(nameof(ClusterCollection), DisableParallelization = true)]
public sealed class ClusterCollection;
