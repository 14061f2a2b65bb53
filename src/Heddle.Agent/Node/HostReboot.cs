using System.Diagnostics;
using Heddle.Agent.Connection;
using Heddle.Contracts.Agents;
using Microsoft.Extensions.Logging;

namespace Heddle.Agent.Node;

/// <summary>Reboots this host. The real one is <see cref="ForcedReboot"/>; tests give a fake, so nothing reboots the machine they run on.</summary>
public interface IHostRebooter
{
    Task RebootAsync(CancellationToken cancellationToken);
}

/// <summary>
/// A host image's way: busybox <c>reboot -f</c> (its init is busybox, and the root is a tmpfs: there is nothing to
/// sync or unmount), and if that cannot run, the kernel's sysrq <c>b</c> (an immediate reboot).
/// </summary>
public sealed class ForcedReboot : IHostRebooter
{
    public async Task RebootAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var reboot = Process.Start(new ProcessStartInfo("/sbin/reboot", "-f") { UseShellExecute = false });
            if (reboot is not null)
            {
                await reboot.WaitForExitAsync(cancellationToken);
                if (reboot.ExitCode == 0)
                {
                    return;
                }
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }

        await File.WriteAllTextAsync("/proc/sysrq-trigger", "b", cancellationToken);
    }
}

/// <summary>
/// The goal state's reboot directive (<see cref="GoalState.RebootInto"/>, set while a host rollout reboots this node),
/// in front of the instance supervisor. An agent that runs from a host image other than the one named stops its
/// instances with their grace period, then reboots its host (the machine network-boots the new image and enrols again);
/// one that runs that image already carries on; one that runs from no host image (a host installed otherwise) refuses,
/// and the controller fails the rollout with its reason. Goal states that come while it reboots are not applied.
/// </summary>
public sealed partial class HostReboot(IGoalStateTarget instances, Func<Task> stopInstances, string? hostImage, IHostRebooter rebooter, Action<AgentMessage> send, ILogger logger)
    : IGoalStateTarget
{
    private int _rebooting;

    /// <summary>Set once the reboot has begun; from then on goal states are not applied.</summary>
    public bool Rebooting => Volatile.Read(ref _rebooting) == 1;

    /// <summary>The reboot under way, for tests and for a clean stop.</summary>
    public Task Reboot { get; private set; } = Task.CompletedTask;

    public IReadOnlyList<InstanceReport> Reports() => instances.Reports();

    public void Apply(GoalState goal)
    {
        if (Rebooting)
        {
            return;
        }

        var image = goal.RebootInto;
        if (image.Length == 0 || image == hostImage)
        {
            instances.Apply(goal);
            return;
        }

        if (string.IsNullOrEmpty(hostImage))
        {
            LogRefused(logger, image);
            send(new AgentMessage
            {
                RebootRefused = new RebootRefused
                {
                    Image = image, Reason = "this host does not run from a host image (it was installed otherwise, no --host-image): the fabric does not reboot it",
                },
            });
            instances.Apply(goal);
            return;
        }

        if (Interlocked.Exchange(ref _rebooting, 1) == 0)
        {
            Reboot = Task.Run(() => RebootAsync(image));
        }
    }

    private async Task RebootAsync(string image)
    {
        LogStopping(logger, hostImage!, image);
        await stopInstances();
        LogRebooting(logger, image);
        try
        {
            await rebooter.RebootAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            LogRebootFailed(logger, e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The controller asks this host to reboot into host image {Image}, but it runs from no host image: refused")]
    private static partial void LogRefused(ILogger logger, string image);

    [LoggerMessage(Level = LogLevel.Information, Message = "Host rollout: this host runs host image {Current} and is to reboot into {Image}; stopping its instances with their grace period")]
    private static partial void LogStopping(ILogger logger, string current, string image);

    [LoggerMessage(Level = LogLevel.Information, Message = "Host rollout: instances stopped; rebooting into host image {Image}")]
    private static partial void LogRebooting(ILogger logger, string image);

    [LoggerMessage(Level = LogLevel.Error, Message = "Host rollout: the reboot failed ({Problem}); the controller's boot timeout will fail the rollout")]
    private static partial void LogRebootFailed(ILogger logger, string problem);
}
