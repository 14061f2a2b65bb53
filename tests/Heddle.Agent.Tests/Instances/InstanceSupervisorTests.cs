using System.Collections.Concurrent;
using Heddle.Agent.Drivers;
using Heddle.Agent.Instances;
using Heddle.Agent.Node;
using Heddle.Agent.Packages;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Api;
using Heddle.Controller;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Instances;

public sealed class InstanceSupervisorTests
{
    [Fact]
    public async Task Apply_InstanceChangedTwiceInQuickSuccession_TheLastRunKeepsItsFolderAndRuns()
    {
        using var state = new TempDirectory("heddle-supervisor-");
        await using var controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = state.Combine("controller") });
        using var api = controller.Client();
        var sha256 = (await api.UploadPackageAsync(SamplePackage.File)).Sha256;
        using var http = controller.Http();
        http.DefaultRequestHeaders.Authorization = new("Bearer", controller.ApiToken);
        using var probes = new HttpClient();
        var options = new AgentOptions { ControllerAgentUrl = controller.AgentUrl, NodeName = "n1", StateDirectory = state.Combine("agent"), StopGracePeriod = TimeSpan.FromSeconds(1) };
        var context = new AgentContext
        {
            Options = options,
            Topology = NodeTopology.Detect(2, 1),
            Packages = new PackageCache(state.Combine("agent", "cache"), http),
            Drivers = new Dictionary<string, IInstanceDriver> { ["process"] = new ProcessDriver(null, "not under test", TimeProvider.System) },
            Images = new ImageCache(state.Combine("agent", "images"), http),
            Ports = new PortAllocator("127.0.0.1", 40000, 40999),
            ProbeClient = probes,
            Time = TimeProvider.System,
        };
        var reports = new ConcurrentDictionary<string, InstanceReport>();
        var supervisor = new InstanceSupervisor(context, new InstanceJournal(state.Combine("agent", "instances.json")), r => reports[r.InstanceId] = r);
        GoalState Goal(int cpu) => new()
        {
            Instances =
            {
                new InstanceGoal
                {
                    InstanceId = "hello/worker/0", Service = "hello", Role = "worker", PackageSha256 = sha256, PackagePath = $"/v1/packages/{sha256}/content",
                    Cpus = { cpu }, MemoryMib = 64, Generation = 6, Revision = 2,
                },
            },
        };

        try
        {
            // The same generation with another CPU, then back: three runs of one instance in one folder, two of them stopping.
            supervisor.Apply(Goal(0));
            await Poll.UntilAsync(() => reports.TryGetValue("hello/worker/0", out var r) && r.State == InstanceStates.Ready, TimeSpan.FromSeconds(30), "the first run ready");
            supervisor.Apply(Goal(1));
            supervisor.Apply(Goal(0));
            await supervisor.Quiet();
            await Poll.UntilAsync(() => reports["hello/worker/0"].State == InstanceStates.Ready, TimeSpan.FromSeconds(30), "the last run ready");
            await supervisor.Quiet();

            var report = reports["hello/worker/0"];
            Assert.Equal(0, report.Restarts);
            Assert.True(Posix.IsAlive(report.Pid, Posix.StartTime(report.Pid) ?? 0), "the last run's process is alive");
            Assert.True(File.Exists(Path.Combine(supervisor.DirectoryOf("hello/worker/0")!, "disk", "app", "heddle-instance.json")), "the last run's app/ is there");
            // Ready can be reported while the launch chain (root script, nsenter, setpriv, taskset) is still exec'ing in that
            // process, before it is pinned: the role's own code only ever runs pinned.
            await Poll.UntilAsync(() => Task.FromResult(Posix.AllowedCpus(report.Pid)), cpus => cpus == "0", TimeSpan.FromSeconds(10), "the last run pinned to CPU 0");
        }
        finally
        {
            await supervisor.StopAllAsync();
        }
    }
}
