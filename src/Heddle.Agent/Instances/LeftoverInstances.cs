using Heddle.Agent.Drivers;
using Heddle.Model.Definition;

namespace Heddle.Agent.Instances;

/// <summary>
/// Stops the instances an agent's journal records when the agent itself cannot: `heddle up` uses it at teardown
/// for nodes whose agent was killed, since instances deliberately outlive their agent.
/// </summary>
public static class LeftoverInstances
{
    /// <returns>How many were still running and were killed.</returns>
    public static int Stop(string agentStateDirectory, string nodeName)
    {
        var journal = new InstanceJournal(Path.Combine(agentStateDirectory, "instances.json"));
        var cgroups = Cgroups.Open(nodeName, agentStateDirectory, out _);
        var killed = 0;
        foreach (var entry in journal.Load())
        {
            if (Posix.IsAlive(entry.Pid, entry.StartTime))
            {
                Posix.SignalGroup(entry.Pid, Posix.SIGKILL);
                killed++;
            }

            cgroups?.KillAll(entry.Id);
            WaitUntilEmpty(cgroups, entry.Id);
            cgroups?.Remove(entry.Id);
        }

        // Containers: runc's state names them whether or not the journal still did; delete them and their disks.
        killed += Drivers.Containers.ContainerDriver.StopLeftovers(agentStateDirectory,
            journal.Load().Where(e => e.Driver == DriverNames.Container).Select(e => (e.Id, e.Directory)));
        foreach (var entry in journal.Load())
        {
            cgroups?.Remove(entry.Id);
        }

        journal.Save([]);
        cgroups?.RemoveAll();
        Isolation.InstanceDisk.RemoveAllUnder(agentStateDirectory);
        return killed;
    }

    private static void WaitUntilEmpty(Cgroups? cgroups, string instance)
    {
        for (var i = 0; cgroups is not null && i < 200 && cgroups.Tasks(instance).Count > 0; i++)
        {
            Thread.Sleep(10);
        }
    }
}
