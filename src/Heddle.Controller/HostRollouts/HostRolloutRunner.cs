using Heddle.Controller.Store;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.HostRollouts;

/// <summary>
/// Runs the host rollout on the leader: reads it, every node and every instance fresh, takes one step of
/// <see cref="HostRolloutWalker"/>, and stores the rollout with the machines' images it sets and its events, in one
/// commit (refused if another writer changed it since, or the term ended: the next pass reads it again). When the nodes being walked or their stages
/// change, the change feed queues every service (their placement passes take the instances out of rotation, and back)
/// and tells the nodes' agents (the reboot directive).
/// </summary>
public sealed partial class HostRolloutRunner(IHostRolloutStore rollouts, IMachineStore machines, IClusterStore store,
    ControllerOptions options, TimeProvider time, ILogger<HostRolloutRunner> logger, Leadership.LeaderTerm? term = null, Publishing.IPublicationBarrier? publication = null)
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

        var step = HostRolloutWalker.Step(new HostWalkInput(rollout, store.ListNodes(), store.ListInstances(), options.HostRollout, time.GetUtcNow())
        {
            Published = publication is null ? () => true : publication.Published,
        });
        foreach (var (machine, image) in step.ImageSets)
        {
            var missing = machines.GetMachine(machine) is null ? $"machine {machine} was removed" : machines.GetHostImage(image) is null ? $"host image {image} was deleted" : null;
            if (missing is not null)
            {
                step = new HostWalkStep { Rollout = rollout with { Phase = HostRolloutPhase.Failed, Reason = missing, Finished = time.GetUtcNow() }, Changed = true };
                step.Events.Add((EventKind.HostRolloutFailed, rollout.Image, $"host rollout to {rollout.Image} failed: {missing}"));
                break;
            }
        }

        if (!step.Changed)
        {
            return step.RequeueAfter;
        }

        // One commit with the machines' images, guarded by the term as placement commits are: a leader that lost its
        // term writes no step and sets no machine's image. Refused (read again next step) if anything changed since.
        await rollouts.UpdateHostRolloutAsync(step.Rollout, cancellationToken, term?.Fence, [.. step.Events.Select(e => new NewEvent(e.Kind, e.Subject, e.Message))], step.ImageSets);
        return TimeSpan.Zero;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Host rollout: the store is away ({Problem}); trying again")]
    private static partial void LogStoreAway(ILogger logger, string problem);
}
