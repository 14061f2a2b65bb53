using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Testing;
using Microsoft.Extensions.DependencyInjection;

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

            var description = JsonDocument.Parse(File.ReadAllText(Path.Combine(agent.Supervisor.DirectoryOf(instance.Id)!, "disk", "app", "heddle-instance.json"))).RootElement;
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

/// <summary>The data planes' views (DNS records, load balancer configuration) follow instance readiness in a live cluster.</summary>
[Collection(nameof(ClusterCollection))]
public sealed class DataPlaneProjectionTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task DnsRecordSet_HoldsOnlyReadyInstances_AndFollowsAKilledInstance()
    {
        await using var cluster = await TestCluster.StartAsync();
        var source = cluster.Controller.Services.GetRequiredService<Heddle.Controller.Dns.DnsRecordSource>();
        var published = Record(source);
        await cluster.DeploySampleAsync();
        var service = await cluster.WaitUntilReadyAsync("hello", 4, TimeSpan.FromSeconds(60));
        static DnsRole Web(DnsRecordSet set) => set.Services.Single().Roles.Single(r => r.Name == "web");

        var web = await Poll.UntilAsync(() => Task.FromResult(Web(source.Current)), r => r.Instances.Count == 3, TimeSpan.FromSeconds(5), "3 web instances in DNS");
        Assert.All(web.Instances, i => Assert.Equal("tcp", Assert.Single(i.Endpoints).Transport));
        var victim = service.Instances.First(i => i.Role == "web");
        Assert.Contains(web.Instances, i => i.Index == victim.Index && i.Address == victim.NodeAddress && i.Endpoints[0].Port == victim.Ports["http"]);

        await KillAndFollowAsync(cluster, source, victim, set => Web(set).Instances.Count, published, "DNS record set");
        lock (published)
        {
            Assert.True(published.Select(p => p.View.Serial).SequenceEqual(published.Select(p => p.View.Serial).Order()), "serials only grow");
        }
    }

    [Fact]
    public async Task LoadBalancerConfig_HasTheServiceVip_WithOnlyReadyInstances_AndFollowsAKilledInstance()
    {
        await using var cluster = await TestCluster.StartAsync();
        var source = cluster.Controller.Services.GetRequiredService<Heddle.Controller.LoadBalancing.LoadBalancerConfigSource>();
        var published = Record(source);
        await cluster.DeploySampleAsync();
        var service = await cluster.WaitUntilReadyAsync("hello", 4, TimeSpan.FromSeconds(60));
        static VipListener Web(LoadBalancerConfig config) => config.Listeners.Single(l => l.Port == 8080);

        var web = await Poll.UntilAsync(() => Task.FromResult(Web(source.Current)), l => l.Backends.Count == 3, TimeSpan.FromSeconds(5), "3 web instances behind the VIP");
        Assert.Equal(("hello", "http", service.Vip), (web.Service, web.Protocol, web.Vip));
        Assert.Equal(("http", "/health"), (web.Probe?.Kind, web.Probe?.Path));
        var victim = service.Instances.First(i => i.Role == "web");
        Assert.Contains(web.Backends, b => b.Id == victim.Id && b.Address == victim.NodeAddress && b.Port == victim.Ports["http"]);

        await KillAndFollowAsync(cluster, source, victim, config => Web(config).Backends.Count, published, "load balancer configuration");
        lock (published)
        {
            Assert.True(published.Select(p => p.View.Version).SequenceEqual(published.Select(p => p.View.Version).Order()), "versions only grow");
        }
    }

    [Fact]
    public async Task ARemoteBalancerFollowingChanges_HoldsTheView_AndAfterReconnecting_IsSentOnlyWhatChangedMeanwhile()
    {
        await using var cluster = await TestCluster.StartAsync();
        var source = cluster.Controller.Services.GetRequiredService<Heddle.Controller.LoadBalancing.LoadBalancerConfigSource>();
        var copy = Views.LoadBalancerCopy();
        static string Json(LoadBalancerConfig view) => System.Text.Json.JsonSerializer.Serialize(view, HeddleApiClient.Json);

        // Followed while the sample deploys, as `heddle lb` does: the copy's view is the controller's, version and all.
        using (var following = new CancellationTokenSource(TimeSpan.FromSeconds(90)))
        {
            var stream = Task.Run(async () =>
            {
                await foreach (var view in cluster.Api.FollowLoadBalancerConfigAsync(copy, following.Token))
                {
                    if (view.Listeners.Any(l => l.Port == 8080 && l.Backends.Count == 3) && Json(view) == Json(source.Current))
                    {
                        return view;
                    }
                }

                return null;
            });
            await cluster.DeploySampleAsync();
            Assert.NotNull(await stream);
        }

        Assert.Equal(1, copy.WholeViews);

        // Gone from the stream, the balancer keeps its copy; meanwhile an instance is killed and comes back.
        var victim = (await cluster.WaitUntilReadyAsync("hello", 4, TimeSpan.FromSeconds(60))).Instances.First(i => i.Role == "web");
        var held = copy.Version;
        System.Diagnostics.Process.GetProcessById(victim.Pid).Kill();
        await Poll.UntilAsync(() => Task.FromResult(source.Version), v => v > held, TimeSpan.FromSeconds(10), "a change published while the balancer was away");

        using var again = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        LoadBalancerConfig? caughtUp = null;
        await foreach (var view in cluster.Api.FollowLoadBalancerConfigAsync(copy, again.Token))
        {
            Assert.NotEqual(held, copy.Version);
            if (Json(view) == Json(source.Current))
            {
                caughtUp = view;
                break;
            }
        }

        Assert.NotNull(caughtUp); // the view made from the changes is the controller's
        Assert.Equal(1, copy.WholeViews); // and it was sent only what changed since the version it held
    }

    private static List<(DateTimeOffset At, T View)> Record<T>(Heddle.Controller.Publishing.StoreProjection<T> source)
        where T : class
    {
        var published = new List<(DateTimeOffset At, T View)>();
        source.Changed += view =>
        {
            lock (published)
            {
                published.Add((DateTimeOffset.UtcNow, view));
            }
        };
        return published;
    }

    /// <summary>Kills one web instance: the view drops it, then takes the restarted one back; prints how long the drop took to publish.</summary>
    private async Task KillAndFollowAsync<T>(TestCluster cluster, Heddle.Controller.Publishing.StoreProjection<T> source, InstanceStatus victim, Func<T, int> webCount, List<(DateTimeOffset At, T View)> published, string what)
        where T : class
    {
        System.Diagnostics.Process.GetProcessById(victim.Pid).Kill();

        await Poll.UntilAsync(() => Task.FromResult(webCount(source.Current)), n => n == 2, TimeSpan.FromSeconds(10), $"the killed instance out of the {what}");
        await Poll.UntilAsync(() => Task.FromResult(webCount(source.Current)), n => n == 3, TimeSpan.FromSeconds(30), $"the restarted instance back in the {what}");
        var faulted = (await cluster.Api.ListEventsAsync()).First(e => e.Subject == victim.Id && e.Message.StartsWith("Faulted", StringComparison.Ordinal));
        lock (published)
        {
            // Reported, not asserted (timing belongs to benchmarks): from the controller learning the instance is no
            // longer Ready to the view without it being published to the data plane.
            var removed = published.First(p => p.At >= faulted.Time && webCount(p.View) == 2);
            output.WriteLine($"{what} publish latency after the instance faulted: {(removed.At - faulted.Time).TotalMilliseconds:0.0} ms");
        }
    }
}
