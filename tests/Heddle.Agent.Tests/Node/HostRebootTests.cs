using Heddle.Agent.Connection;
using Heddle.Agent.Node;
using Heddle.Contracts.Agents;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heddle.Agent.Tests.Node;

/// <summary>The reboot directive of a host rollout, with a fake supervisor and a fake reboot: nothing here reboots the machine the tests run on.</summary>
public sealed class HostRebootTests
{
    private sealed class FakeInstances : IGoalStateTarget
    {
        public List<GoalState> Applied { get; } = [];

        public IReadOnlyList<InstanceReport> Reports() => [];

        public void Apply(GoalState goal) => Applied.Add(goal);
    }

    private sealed class FakeRebooter(List<string> steps) : IHostRebooter
    {
        public Task RebootAsync(CancellationToken cancellationToken)
        {
            lock (steps)
            {
                steps.Add("reboot");
            }

            return Task.CompletedTask;
        }
    }

    private readonly FakeInstances _instances = new();
    private readonly List<string> _steps = [];
    private readonly List<AgentMessage> _sent = [];

    private HostReboot Reboot(string? hostImage) => new(_instances, () =>
    {
        lock (_steps)
        {
            _steps.Add("stop instances");
        }

        return Task.CompletedTask;
    }, hostImage, new FakeRebooter(_steps), _sent.Add, NullLogger.Instance);

    [Fact]
    public async Task Apply_RebootInto_OnAHostImage_StopsTheInstancesThenReboots_Once_AndAppliesNothingMore()
    {
        var reboot = Reboot("img-1");

        reboot.Apply(new GoalState { Version = 1, RebootInto = "img-2" });
        reboot.Apply(new GoalState { Version = 2, RebootInto = "img-2" });
        await reboot.Reboot;
        reboot.Apply(new GoalState { Version = 3 });

        Assert.True(reboot.Rebooting);
        Assert.Equal(["stop instances", "reboot"], _steps);
        Assert.Empty(_instances.Applied);
        Assert.Empty(_sent);
    }

    [Fact]
    public async Task Apply_RebootInto_NotOnAHostImage_Refuses_SaysWhy_AndRebootsNothing()
    {
        var reboot = Reboot(null);

        reboot.Apply(new GoalState { Version = 1, RebootInto = "img-2" });
        await reboot.Reboot;

        Assert.False(reboot.Rebooting);
        Assert.Empty(_steps);
        var refused = Assert.Single(_sent).RebootRefused;
        Assert.Equal("img-2", refused.Image);
        Assert.Contains("does not run from a host image", refused.Reason);
        Assert.Single(_instances.Applied); // its instances carry on
    }

    [Fact]
    public void Apply_RebootIntoTheImageItRuns_OrNoDirective_IsAnOrdinaryGoalState()
    {
        var reboot = Reboot("img-2");

        reboot.Apply(new GoalState { Version = 1, RebootInto = "img-2" });
        reboot.Apply(new GoalState { Version = 2 });

        Assert.False(reboot.Rebooting);
        Assert.Empty(_steps);
        Assert.Equal([1L, 2L], _instances.Applied.Select(g => g.Version));
    }
}
