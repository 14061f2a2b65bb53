using Heddle.Agent.Drivers;
using Heddle.Model.Definition;

namespace Heddle.Agent.Hollow;

/// <summary>
/// The driver of a hollow node (`heddle hollow`): it starts nothing — no process, no container, no cgroup, no disk, no
/// startup task — and an instance it "starts" runs, as far as the agent can tell, from <paramref name="readyAfter"/>
/// later until it is stopped. The runner above it is the real one: it still reports Downloading, Starting, Ready,
/// Stopping and Stopped, allocates ports and writes the instance's folder.
/// </summary>
public sealed class HollowDriver(string name, TimeSpan readyAfter, TimeProvider time) : IInstanceDriver
{
    /// <summary>The model's driver name it stands in for (`process`), so the allocator places ordinary roles on it.</summary>
    public string Name => name;

    public void PrepareDisk(InstanceLaunch launch)
    {
    }

    public (long Used, long Size)? DiskUsage(string directory) => null;

    /// <summary>Nothing runs to read heddle-instance.json: the runner does not write it.</summary>
    public bool ReadsDescription => false;

    public void PlaceDescription(InstanceLaunch launch, string partialFile) => File.Delete(partialFile);

    public Task<int> RunStartupTaskAsync(InstanceLaunch launch, StartupTask task, int number, CancellationToken cancellationToken) => Task.FromResult(0);

    public async Task<RunningProcess> StartAsync(InstanceLaunch launch, CancellationToken cancellationToken)
    {
        if (readyAfter > TimeSpan.Zero)
        {
            await Task.Delay(readyAfter, time, cancellationToken);
        }

        return new RunningProcess(0, 0, null, launch.Id);
    }

    public bool IsRunning(string instanceId, int pid, long startTime) => false;

    /// <summary>A hollow instance never ends by itself: it runs until the runner stops it.</summary>
    public async Task<int?> WaitForExitAsync(RunningProcess process, CancellationToken cancellationToken)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
        return null;
    }

    public Task StopAsync(RunningProcess process, TimeSpan grace, CancellationToken cancellationToken) => Task.CompletedTask;

    public string? WhyEnded(RunningProcess process, InstanceLaunch launch) => null;

    public bool Signal(RunningProcess process, int signal) => true;

    /// <summary>Removes the instance's folder (the runner made it; no log in it is worth keeping).</summary>
    public void Cleanup(string instanceId, string? directory)
    {
        if (directory is not null && Directory.Exists(directory))
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    public void ReleaseHost()
    {
    }
}
