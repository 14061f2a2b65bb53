using Heddle.Controller.Store;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.HostRollouts;

/// <summary>
/// Runs the host rollout on the leader: reads it, every node and every instance fresh, takes one step of
/// <see cref="HostRolloutWalker"/>, sets the machines' images, stores the rollout (refused if another writer changed it
/// since, or the term ended: the next pass reads it again) with its events. When the nodes being emptied change, the
/// change feed queues every service (their placement passes move the instances) and tells the nodes' agents (the reboot directive).
/// </summary>
public sealed partial class HostRolloutRunner(IHostRolloutStore rollouts, IMachineStore machines, IClusterStore store,
    ControllerOptions options, TimeProvider time, ILogger<HostRolloutRunner> logger, Leadership.LeaderTerm? term = null)
{
    private readonly SemaphoreSlim _wake = new(0);

    /// <summary>Looks again at once (a user started, paused, resumed or rolled back the rollout, or an agent refused).</summary>
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            TimeSpan after;
            try
            {
                after = await StepAsync(cancellationToken);
            }
            catch (Store.Kv.KvUnavailableException e)
            {
                LogStoreAway(logger, e.Message);
                after = TimeSpan.FromSeconds(1);
            }

            using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            await Task.WhenAny(_wake.WaitAsync(waiting.Token), Task.Delay(after, time, waiting.Token));
            await waiting.CancelAsync();
        }
    }

    /// <summary>One step; returns when to look again.</summary>
    public async Task<TimeSpan> StepAsync(CancellationToken cancellationToken = default)
    {
        if (rollouts.GetHostRollout() is not { IsFinished: false } rollout)
        {
            return TimeSpan.FromSeconds(5);
        }

        var step = HostRolloutWalker.Step(new HostWalkInput(rollout, store.ListNodes(), store.ListInstances(), options.HostRollout, time.GetUtcNow()));
        foreach (var (machine, image) in step.ImageSets)
        {
            var outcome = await machines.SetMachineHostImageAsync(machine, image, cancellationToken);
            if (outcome != MachineImageOutcome.Set)
            {
                var reason = outcome == MachineImageOutcome.MachineMissing ? $"machine {machine} was removed" : $"host image {image} was deleted";
                step = new HostWalkStep { Rollout = rollout with { Phase = HostRolloutPhase.Failed, Reason = reason, Finished = time.GetUtcNow() }, Changed = true };
                step.Events.Add((EventKind.HostRolloutFailed, rollout.Image, $"host rollout to {rollout.Image} failed: {reason}"));
                break;
            }
        }

        if (!step.Changed)
        {
            return step.RequeueAfter;
        }

        // Guarded by the term, as placement commits are: a leader that lost its term writes no step.
        await rollouts.UpdateHostRolloutAsync(step.Rollout, cancellationToken, term?.Fence, [.. step.Events.Select(e => new NewEvent(e.Kind, e.Subject, e.Message))]);
        return TimeSpan.Zero;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Host rollout: the store is away ({Problem}); trying again")]
    private static partial void LogStoreAway(ILogger logger, string problem);
}
