using System.Diagnostics;
using Heddle.Controller.Leadership;
using Term = Heddle.Controller.Leadership.Leadership;
using Heddle.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Heddle.Controller.Tests.Integration;

/// <summary>The controller on etcd (`--store etcd://...`): what works on SQLite works the same, and of several controllers one leads.</summary>
[Collection(nameof(ClusterCollection))]
public sealed class EtcdControllerTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task OnEtcd_DeployScaleRestartAndDelete_WorkAsOnSqlite()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var cluster = await TestCluster.StartAsync(nodes: 3, configure: o => o with { Store = $"etcd://{etcd.ClientUrl.Authority}" });
        await cluster.DeploySampleAsync();
        var first = await cluster.WaitUntilReadyAsync("hello", 4, Deadline);
        Assert.NotNull(first.Vip);
        using var http = new HttpClient();
        foreach (var web in first.Instances.Where(i => i.Role == "web"))
        {
            Assert.Equal($"hi from {web.Id}\n", await http.GetStringAsync($"http://{web.NodeAddress}:{web.Ports["http"]}/"));
        }

        await cluster.DeploySampleAsync(File.ReadAllText(SamplePackage.ConfigurationPath).Replace("instances: 3", "instances: 5"));
        var scaled = await cluster.WaitUntilReadyAsync("hello", 6, Deadline);
        Assert.All(first.Instances, i => Assert.Equal(i.Pid, scaled.Instances.Single(s => s.Id == i.Id).Pid)); // a scale-out leaves the others alone

        await cluster.RestartControllerAsync();
        var restarted = await cluster.WaitUntilReadyAsync("hello", 6, Deadline);
        Assert.Equal(scaled.Instances.Select(i => (i.Id, i.Pid)).Order(), restarted.Instances.Select(i => (i.Id, i.Pid)).Order());
        Assert.Equal(first.Vip, restarted.Vip);
        var pids = await Poll.UntilAsync(() => Task.FromResult(cluster.InstanceProcesses()), p => p.Count == 6, TimeSpan.FromSeconds(20), "exactly 6 instance processes");
        Assert.Equal(restarted.Instances.Select(i => i.Pid).Order(), pids.Order());

        await cluster.Api.DeleteServiceAsync("hello");
        await Poll.UntilAsync(() => cluster.Api.ListServicesAsync(), s => s.Count == 0, Deadline, "the service gone");
        await Poll.UntilAsync(() => Task.FromResult(cluster.InstanceProcesses()), p => p.Count == 0, Deadline, "no instance process left");
    }

    [Fact]
    public async Task TwoControllersOnOneEtcd_OneLeads_TheOtherServesTheApi_AndTakesOverWhenTheLeaderStops()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        using var directory = new TempDirectory("heddle-two-");
        var store = $"etcd://{etcd.ClientUrl.Authority}";
        var a = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = directory.Combine("a"), Store = store });
        TestCluster.CopyCa(directory.Combine("a"), directory.Combine("b"));
        var b = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = directory.Combine("b"), Store = store });
        try
        {
            var leader = await Poll.UntilAsync(() => Task.FromResult(Leaders(a, b)), l => l.Count == 1, TimeSpan.FromSeconds(20), "one leader");
            var (first, second) = leader[0] == a ? (a, b) : (b, a);
            Assert.Equal(first.ApiUrl.ToString(), TermOf(first)!.Holder);

            // A deployment accepted by the follower is the leader's to place (there are no nodes: it says it cannot). The admin
            // token is the cluster's (made by the controller that started first), and so is the CA (given to b as an operator would).
            var token = a.ApiToken.Length > 0 ? a.ApiToken : b.ApiToken;
            using (var api = new Contracts.Api.HeddleApiClient(second.ApiUrl, token, second.CaCertificate))
            {
                var upload = await api.UploadPackageAsync(SamplePackage.File);
                await api.DeployAsync(new Contracts.Api.DeploymentRequest(upload.Sha256, File.ReadAllText(SamplePackage.ConfigurationPath), "hello.config.yaml"));
            }

            using (var api = new Contracts.Api.HeddleApiClient(first.ApiUrl, token, first.CaCertificate))
            {
                await Poll.UntilAsync(() => api.ListEventsAsync(), e => e.Any(x => x.Kind == nameof(EventKind.PlacementFailed) && x.Subject == "hello"), Deadline, "the leader to try placing hello");
            }

            var stopped = Stopwatch.StartNew();
            await first.DisposeAsync();
            await Poll.UntilAsync(() => Task.FromResult(TermOf(second)), t => t is not null, TimeSpan.FromSeconds(20), "the other controller to lead");
            output.WriteLine($"the leader stopped; the other led {stopped.ElapsedMilliseconds} ms later");
        }
        finally
        {
            await a.DisposeAsync(); // disposing twice is harmless
            await b.DisposeAsync();
        }
    }

    [Fact]
    public async Task TwoControllersWithAgentsOnBoth_DeployThroughTheFollower_ThenTheLeaderStops_AndNothingIsLostOrDuplicated()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var cluster = await TestCluster.StartAsync(nodes: 3, controllers: 2, configure: o => o with { Store = $"etcd://{etcd.ClientUrl.Authority}" });
        var leaders = await Poll.UntilAsync(() => Task.FromResult(Leaders([.. cluster.Controllers.OfType<ControllerHost>()])), l => l.Count == 1, TimeSpan.FromSeconds(20), "one leader");
        var leader = cluster.Controllers.IndexOf(leaders[0]);
        var follower = cluster.Controllers[1 - leader]!;
        using var api = new Contracts.Api.HeddleApiClient(follower.ApiUrl, cluster.Controller.ApiToken, follower.CaCertificate);
        var upload = await api.UploadPackageAsync(SamplePackage.File);
        await api.DeployAsync(new Contracts.Api.DeploymentRequest(upload.Sha256, File.ReadAllText(SamplePackage.ConfigurationPath), "hello.config.yaml"));
        var ready = await ReadyAsync(api, 4);
        Assert.Equal(3, (await api.ListNodesAsync()).Count(n => n.Condition == "Ready")); // nodes on either controller stay Ready

        var stopped = Stopwatch.StartNew();
        var stopping = cluster.StopControllerAsync(leader);
        await Poll.UntilAsync(() => Task.FromResult(TermOf(follower)), t => t is not null, TimeSpan.FromSeconds(20), "the follower to lead");
        output.WriteLine($"the leader was told to stop; the follower led {stopped.ElapsedMilliseconds} ms later");
        await stopping;
        output.WriteLine($"the leader had stopped {stopped.ElapsedMilliseconds} ms after it was told");
        await api.DeployAsync(new Contracts.Api.DeploymentRequest(upload.Sha256, File.ReadAllText(SamplePackage.ConfigurationPath).Replace("instances: 3", "instances: 4"), "hello.config.yaml"));
        var scaled = await ReadyAsync(api, 5);

        Assert.All(ready.Instances, i => Assert.Equal(i.Pid, scaled.Instances.Single(s => s.Id == i.Id).Pid));
        Assert.Equal(3, (await api.ListNodesAsync()).Count(n => n.Condition == "Ready"));
        var pids = await Poll.UntilAsync(() => Task.FromResult(cluster.InstanceProcesses()), p => p.Count == 5, TimeSpan.FromSeconds(20), "exactly 5 instance processes");
        Assert.Equal(scaled.Instances.Select(i => i.Pid).Order(), pids.Order());
    }

    [Fact]
    public async Task EtcdLosesOneMemberOfThree_NothingVisibleChanges_LosesTwo_WritesSaySoAndReadsAnswer_BothBack_AllWorks()
    {
        await using var etcd = await EtcdProcess.StartAsync(members: 3);
        await using var cluster = await TestCluster.StartAsync(nodes: 3, configure: o => o with { Store = "etcd://" + string.Join(',', etcd.ClientUrls.Select(u => u.Authority)) });
        string Config(int web) => File.ReadAllText(SamplePackage.ConfigurationPath).Replace("instances: 3", $"instances: {web}");
        await cluster.DeploySampleAsync();
        await cluster.WaitUntilReadyAsync("hello", 4, Deadline);

        etcd.Kill(0);
        await cluster.DeploySampleAsync(Config(4));
        await cluster.WaitUntilReadyAsync("hello", 5, Deadline);

        etcd.Kill(1);
        var refused = await Assert.ThrowsAsync<Contracts.Api.HeddleApiException>(() => cluster.DeploySampleAsync(Config(5)));
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, refused.Status);
        Assert.Contains("store unavailable: 1 of 3 etcd members reachable", refused.Message);
        var lastKnown = await cluster.Api.GetServiceAsync("hello");
        Assert.Equal(5, lastKnown.Instances.Count);
        Assert.Equal(3, (await cluster.Api.ListNodesAsync()).Count);

        await etcd.RestartAsync(0);
        await etcd.RestartAsync(1);
        await Poll.UntilAsync(async () =>
        {
            try
            {
                await cluster.DeploySampleAsync(Config(5));
                return true;
            }
            catch (Contracts.Api.HeddleApiException e) when (e.Status == System.Net.HttpStatusCode.ServiceUnavailable)
            {
                return false; // etcd is electing its leader again
            }
        }, ok => ok, Deadline, "a deployment accepted again");
        var after = await cluster.WaitUntilReadyAsync("hello", 6, Deadline);
        Assert.All(lastKnown.Instances, i => Assert.Equal(i.Pid, after.Instances.Single(a => a.Id == i.Id).Pid)); // nothing restarted through it all
    }

    /// <summary>
    /// Deploys, scales and deletes through random controllers while the leader is stopped and started again (seeded, so a
    /// failure repeats): at the end the service is as the last acknowledged request left it (or as an unacknowledged one
    /// after it would, whole), and no instance runs twice.
    /// </summary>
    [Fact]
    public async Task RequestsToRandomControllers_WhileLeadersStopAndStart_EndAsTheLastAcknowledgedOne_AndNoInstanceRunsTwice()
    {
        const int Seed = 15;
        var random = new Random(Seed);
        await using var etcd = await EtcdProcess.StartAsync();
        await using var cluster = await TestCluster.StartAsync(nodes: 3, controllers: 3, configure: o => o with { Store = $"etcd://{etcd.ClientUrl.Authority}" });
        var token = cluster.Controller.ApiToken;
        var ca = cluster.Controller.CaCertificate;
        string Config(int web) => File.ReadAllText(SamplePackage.ConfigurationPath).Replace("instances: 3", $"instances: {web}");
        var upload = await cluster.Api.UploadPackageAsync(SamplePackage.File);

        // What the service may end as: the state the last acknowledged request left, and any unacknowledged one after it.
        var acceptable = new List<int?> { null }; // null: no service; n: n web instances and the worker
        var stopped = new List<int>();
        for (var step = 0; step < 24; step++)
        {
            if (step % 6 == 3 && Leaders([.. cluster.Controllers.OfType<ControllerHost>()]) is [var leading])
            {
                var k = cluster.Controllers.IndexOf(leading);
                output.WriteLine($"step {step}: the leader (controller {k}) stops");
                _ = cluster.StopControllerAsync(k); // not awaited: requests go on while it stops
                stopped.Add(k);
            }
            else if (step % 6 == 5 && stopped.Count > 0)
            {
                output.WriteLine($"step {step}: controller {stopped[0]} starts again");
                var waited = Stopwatch.StartNew();
                try
                {
                    await Poll.UntilAsync(() => Task.FromResult(cluster.Controllers[stopped[0]] is null), s => s, Deadline, "the stop to finish");
                }
                catch (TimeoutException e)
                {
                    throw new TimeoutException($"{e.Message}\ncontrollers' logs:\n{cluster.ControllerLogs}", e);
                }
                output.WriteLine($"step {step}: waited {waited.Elapsed.TotalSeconds:0.0} s more for controller {stopped[0]} to have stopped");
                await cluster.StartControllerAsync(stopped[0]);
                stopped.RemoveAt(0);
            }

            var alive = cluster.Controllers.OfType<ControllerHost>().ToList();
            var target = alive[random.Next(alive.Count)];
            int? wanted = random.Next(5) == 0 ? null : random.Next(1, 4);
            using var api = new Contracts.Api.HeddleApiClient(target.ApiUrl, token, ca);
            try
            {
                if (wanted is { } web)
                {
                    await api.DeployAsync(new Contracts.Api.DeploymentRequest(upload.Sha256, Config(web), "hello.config.yaml"));
                }
                else
                {
                    await api.DeleteServiceAsync("hello");
                }

                acceptable = [wanted];
                output.WriteLine($"step {step}: {(wanted is null ? "delete" : $"{wanted} web")} through {target.ApiUrl}: acknowledged");
            }
            catch (Exception e) when (e is Contracts.Api.HeddleApiException or HttpRequestException or IOException or TaskCanceledException)
            {
                if (e is Contracts.Api.HeddleApiException { Status: < System.Net.HttpStatusCode.InternalServerError } refused)
                {
                    // Refused with a reason (nothing to delete, a deletion under way): nothing changed.
                    output.WriteLine($"step {step}: {(wanted is null ? "delete" : $"{wanted} web")} through {target.ApiUrl}: refused ({refused.Message})");
                    continue;
                }

                acceptable.Add(wanted); // no answer: it may have been applied (whole) or not at all
                output.WriteLine($"step {step}: {(wanted is null ? "delete" : $"{wanted} web")} through {target.ApiUrl}: not acknowledged ({e.Message})");
            }
        }

        foreach (var k in stopped)
        {
            await Poll.UntilAsync(() => Task.FromResult(cluster.Controllers[k] is null), s => s, Deadline, "the stop to finish");
            await cluster.StartControllerAsync(k);
        }

        using var check = new Contracts.Api.HeddleApiClient(cluster.Controller.ApiUrl, token, ca);
        (bool Settled, int? Web) final;
        try
        {
            final = await Poll.UntilAsync(async () => await Settled(check), s => s.Settled && acceptable.Contains(s.Web), TimeSpan.FromSeconds(120),
                $"the service as one of: {string.Join(", ", acceptable.Select(a => a is null ? "deleted" : $"{a} web"))}");
        }
        catch (TimeoutException)
        {
            // What it is stuck on, for whoever reads the failure.
            var service = await check.GetServiceAsync("hello");
            output.WriteLine($"{service.State}; {string.Join("; ", service.Instances.Select(i => $"{i.Id} {i.State} on {i.Node} gen {i.Generation}: {i.Reason}"))}");
            output.WriteLine($"nodes: {string.Join("; ", (await check.ListNodesAsync()).Select(n => $"{n.Name} {n.Condition}"))}");
            foreach (var e in (await check.ListEventsAsync()).TakeLast(20))
            {
                output.WriteLine($"  {e.Time:HH:mm:ss.fff} {e.Kind} {e.Subject} {e.Message}");
            }

            throw;
        }

        output.WriteLine($"ended as {(final.Web is null ? "deleted" : $"{final.Web} web")}; acceptable: {string.Join(", ", acceptable.Select(a => a is null ? "deleted" : $"{a} web"))}");

        // Counted from the processes: each instance runs once, and only what the service has.
        var expected = final.Web is { } n ? n + 1 : 0;
        var processes = await Poll.UntilAsync(() => Task.FromResult(cluster.InstanceProcesses()), p => p.Count == expected, TimeSpan.FromSeconds(30), $"{expected} instance processes");
        var names = processes.Select(pid => File.ReadAllText($"/proc/{pid}/environ").Split('\0').FirstOrDefault(v => v.StartsWith("HEDDLE_INSTANCE=", StringComparison.Ordinal))).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
    }

    private static async Task<(bool Settled, int? Web)> Settled(Contracts.Api.HeddleApiClient api)
    {
        try
        {
            var service = await api.GetServiceAsync("hello");
            var web = service.Instances.Count(i => i.Role == "web");
            return (service.State == "Active" && service.Instances.Count == service.DesiredInstances && service.Instances.All(i => i.State == "Ready"), web);
        }
        catch (Contracts.Api.HeddleApiException e) when (e.Status == System.Net.HttpStatusCode.NotFound)
        {
            return (true, null);
        }
    }

    [Fact]
    public async Task AReportArrivingOnAStreamTheNodeHasSinceReplaced_IsNotTaken_AndThatStreamIsEnded()
    {
        // A node's agent gave up on a stream to one controller and said Hello to another; the first still holds a
        // report it was sent before (Starting) and writes it late. Taken, it would overwrite the newer Ready, and the
        // instance would show Starting (and stay out of rotation) until its next change.
        await using var etcd = await EtcdProcess.StartAsync();
        await using var cluster = await TestCluster.StartAsync(nodes: 3, controllers: 2, configure: o => o with { Store = $"etcd://{etcd.ClientUrl.Authority}" });
        var upload = await cluster.Api.UploadPackageAsync(SamplePackage.File);
        await cluster.Api.DeployAsync(new Contracts.Api.DeploymentRequest(upload.Sha256, File.ReadAllText(SamplePackage.ConfigurationPath), "hello.config.yaml"));
        var ready = await ReadyAsync(cluster.Api, 4);
        var agent = cluster.Agents[0]!;
        var node = agent.Connection.Node.Name;
        var reports = agent.Supervisor.Reports();
        Assert.NotEmpty(reports);

        // The old stream: opened with the node's own certificate and Hello on the controller its agent is not on, so the
        // agent's own stream (on the other) is the one replaced, and it says Hello again.
        var other = cluster.Controllers.OfType<ControllerHost>().First(c => c.AgentUrl != agent.Connection.Current);
        var sessions = 0;
        other.Services.GetRequiredService<global::Heddle.Controller.Store.IClusterStore>().Changed += change =>
        {
            if (change.Name == $"sessions/{node}")
            {
                Interlocked.Increment(ref sessions);
            }
        };
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(other.AgentUrl, new Grpc.Net.Client.GrpcChannelOptions
        {
            HttpHandler = Contracts.Trust.ClusterTrust.Handler(other.CaCertificate, () => agent.Identity.Certificate),
        });
        using var deadline = new CancellationTokenSource(Deadline);
        using var call = new Contracts.Agents.AgentService.AgentServiceClient(channel).Connect(cancellationToken: deadline.Token);
        var hello = new Contracts.Agents.Hello { Node = agent.Connection.Node.Clone(), TakesPeerChanges = true };
        hello.Instances.AddRange(reports);
        await call.RequestStream.WriteAsync(new Contracts.Agents.AgentMessage { Hello = hello });
        await Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref sessions)), n => n >= 2, Deadline, "the old stream's Hello, then the agent's again");
        await Poll.UntilAsync(() => Task.FromResult(agent.Connection.Connected), c => c, Deadline, "the agent connected again");

        var late = reports[0].Clone();
        late.State = Contracts.Api.InstanceStates.Starting;
        var ended = false;
        try
        {
            // When the agent said Hello again to this same controller, the old stream is ended then, before the late
            // report: the write fails (the stream was reset) and nothing of it can be taken either.
            await call.RequestStream.WriteAsync(new Contracts.Agents.AgentMessage { Report = late });
            await call.RequestStream.WriteAsync(new Contracts.Agents.AgentMessage { Heartbeat = new Contracts.Agents.Heartbeat() });
            while (await call.ResponseStream.MoveNext(deadline.Token))
            {
            }

            ended = true;
        }
        catch (Grpc.Core.RpcException) when (!deadline.IsCancellationRequested)
        {
            ended = true;
        }

        Assert.True(ended, "the replaced stream was not ended");
        var after = await cluster.Api.GetServiceAsync("hello");
        Assert.All(after.Instances, i => Assert.Equal("Ready", i.State));
        Assert.Equal(ready.Instances.Select(i => (i.Id, i.Pid)).Order(), after.Instances.Select(i => (i.Id, i.Pid)).Order());
        Assert.True(agent.Connection.Connected);
    }

    private static async Task<Contracts.Api.ServiceStatus> ReadyAsync(Contracts.Api.HeddleApiClient api, int count)
    {
        Contracts.Api.ServiceStatus? last = null;
        try
        {
            return await Poll.UntilAsync(async () => last = await api.GetServiceAsync("hello"), s => s.Instances.Count == count && s.Instances.All(i => i.State == "Ready"), Deadline, $"{count} instances Ready");
        }
        catch (TimeoutException e) when (last is not null)
        {
            throw new TimeoutException($"{e.Message}; instances: {string.Join("; ", last.Instances.Select(i => $"{i.Id} {i.State} on {i.Node}: {i.Reason}"))}", e);
        }
    }

    private static Term? TermOf(ControllerHost host) => host.Services.GetRequiredService<LeaderTerm>().Current;

    private static List<ControllerHost> Leaders(params ControllerHost[] hosts) => [.. hosts.Where(h => TermOf(h) is not null)];
}
