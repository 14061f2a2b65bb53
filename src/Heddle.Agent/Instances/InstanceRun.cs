using Heddle.Agent.Drivers;
using Heddle.Contracts.Api;
using Heddle.Model.Definition;

namespace Heddle.Agent.Instances;

/// <summary>
/// One run of an instance: its `simple` startup tasks, its entry point (or the process an earlier agent left running),
/// then its probe until the process ends or fails its liveness probe (Ready ⇄ Unhealthy meanwhile). Returns why the
/// run ended; whatever is left of the process group is stopped before the next.
/// </summary>
internal sealed class InstanceRun(AgentContext context, RunnerState state, InstanceReporting reporting, Action journalChanged)
{
    /// <summary>How often an instance that was never ready is probed (then the role's own interval).</summary>
    private static readonly TimeSpan StartingProbeInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>Runs the instance until it ends; returns why it ended, or null when it was asked to stop.</summary>
    public async Task<string?> RunOnceAsync(InstanceLaunch launch, CancellationToken stop)
    {
        var driver = state.Driver;
        if (state.Running is null)
        {
            reporting.Report(InstanceStates.Starting, null);
            for (var i = 0; i < launch.Role.Startup.Count; i++)
            {
                var task = launch.Role.Startup[i];
                if (task.Type != StartupTaskType.Simple)
                {
                    continue;
                }

                var code = await driver.RunStartupTaskAsync(launch, task, i + 1, stop);
                if (code != 0)
                {
                    return $"startup task {i + 1} ({task.Command}) exited with code {code}";
                }
            }

            var started = await driver.StartAsync(launch, stop);
            lock (state.Lock)
            {
                state.Running = started;
            }

            context.Metrics?.Started(restart: reporting.Restarts > 0);

            journalChanged();
        }

        var process = state.Running!;
        var (probe, interval, threshold) = context.Probes(launch.Role, context.Options.Address, state.Ports, context.ProbeClient);
        using var probing = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var exit = driver.WaitForExitAsync(process, probing.Token);
        var failures = 0;
        var everReady = reporting.State == InstanceStates.Ready;
        string? reason = null;
        while (!exit.IsCompleted)
        {
            var healthy = await probe.CheckAsync(stop);
            if (exit.IsCompleted)
            {
                break;
            }

            context.Metrics?.Probed(healthy);

            if (healthy)
            {
                failures = 0;
                everReady = true;
                if (reporting.State != InstanceStates.Ready)
                {
                    reporting.Report(InstanceStates.Ready, null);
                }
            }
            else if (everReady && ++failures >= threshold)
            {
                if (failures >= 2 * threshold)
                {
                    reason = $"failed its liveness probe ({probe.Description}) {failures} times in a row";
                    break;
                }

                if (reporting.State != InstanceStates.Unhealthy)
                {
                    reporting.Report(InstanceStates.Unhealthy, $"probe {probe.Description} failed {failures} times in a row");
                }
            }

            var wait = everReady ? interval : StartingProbeInterval;
            await Task.WhenAny(exit, Task.Delay(wait, context.Time, stop));
            stop.ThrowIfCancellationRequested();
        }

        if (reason is null)
        {
            var code = await exit;
            reason = driver.WhyEnded(process, launch)
                ?? (code is null ? "exited (its exit code is unknown: it was adopted after an agent restart)" : $"exited with code {code}");
        }
        else
        {
            await probing.CancelAsync();
        }

        // Whatever is left of its process group goes before the restart.
        await driver.StopAsync(process, TimeSpan.FromSeconds(1), CancellationToken.None);
        lock (state.Lock)
        {
            state.Running = null;
        }

        journalChanged();
        return reason;
    }

    /// <summary>Stops what runs now, if anything (SIGTERM, <paramref name="grace"/>, SIGKILL), and waits until it is gone.</summary>
    public async Task StopProcessAsync(TimeSpan grace)
    {
        RunningProcess? running;
        lock (state.Lock)
        {
            running = state.Running;
        }

        if (running is not null)
        {
            await state.Driver.StopAsync(running, grace, CancellationToken.None);
        }

        lock (state.Lock)
        {
            state.Running = null;
        }
    }
}
