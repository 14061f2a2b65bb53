using Heddle.Agent.Drivers;
using Heddle.Agent.Instances;
using Heddle.Agent.Node;
using Heddle.Agent.Packages;
using Heddle.Agent.Probes;
using Heddle.Contracts.Agents;
using Heddle.Model.Definition;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Instances;

/// <summary>What the runners of an agent share, over a fake driver, probe, package source and clock: a node that starts nothing real.</summary>
internal static class FakeNode
{
    public static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(7);
    public const int ProbeThreshold = 2;

    /// <summary>The role of every instance: an entry point, one variable of its own, no endpoints.</summary>
    public static readonly RoleDefinition Role = new()
    {
        Name = "web", EntryPoint = new EntryPoint("./web", []), Environment = new Dictionary<string, string> { ["MODE"] = "test" },
    };

    public static AgentContext Context(TempDirectory state, IInstanceDriver driver, IProbe probe, TimeProvider time, HttpClient http) => new()
    {
        Options = new AgentOptions
        {
            ControllerAgentUrl = new Uri("https://127.0.0.1:1"), NodeName = "n1", StateDirectory = state.Combine("agent"), StopGracePeriod = TimeSpan.FromSeconds(3),
        },
        Topology = NodeTopology.Detect(1, 1),
        Packages = new FakePackages(state.Combine("package"), Role),
        Drivers = new Dictionary<string, IInstanceDriver> { ["process"] = driver },
        Images = new ImageCache(state.Combine("agent", "images"), http),
        Ports = new PortAllocator("127.0.0.1", 40000, 40999),
        Probes = (_, _, _, _) => (probe, ProbeInterval, ProbeThreshold),
        ProbeClient = http,
        Time = time,
    };

    /// <summary>Instance <paramref name="index"/> of shop/web, generation 1, revision 1.</summary>
    public static InstanceGoal Goal(int index) => new()
    {
        InstanceId = $"shop/web/{index}", Service = "shop", Role = "web", Index = index, PackageSha256 = new string('a', 64), PackagePath = "/v1/packages/a/content",
        Cpus = { 0 }, MemoryMib = 64, Generation = 1, Revision = 1, Settings = { ["greeting"] = "hello" },
    };
}
