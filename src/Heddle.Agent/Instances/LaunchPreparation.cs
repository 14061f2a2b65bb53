using Heddle.Agent.Drivers;
using Heddle.Agent.Packages;
using Heddle.Contracts.Api;
using Heddle.Model.Definition;

namespace Heddle.Agent.Instances;

/// <summary>
/// Works out how an instance is launched, before anything of it runs: fetches its package (and a container role's base
/// image), picks the role's driver, adopts the process an earlier agent left running or allocates ports and a folder,
/// and writes the environment and heddle-instance.json. Also sets up the folder and disk again before a restart.
/// </summary>
internal sealed class LaunchPreparation(AgentContext context, RunnerState state, InstanceReporting reporting, InstanceDescription description, JournalEntry? adopted, Action journalChanged)
{
    private JournalEntry? _adopted = adopted;

    /// <summary>
    /// <see cref="PrepareAsync"/>, retried with the restart backoff when it fails (a full disk, a package evicted
    /// under it): the instance is reported Faulted with the reason meanwhile, never left Stopped for good.
    /// </summary>
    public async Task<InstanceLaunch?> PrepareWithRetriesAsync(CancellationToken stop)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await PrepareAsync(stop);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
            {
                var delay = RestartBackoff.Delay(context.Options.RestartBackoff, attempt);
                reporting.Report(InstanceStates.Faulted, $"preparing the instance failed ({e.GetType().Name}: {e.Message}); retrying in {delay.TotalSeconds:0.#} s");
                await Task.Delay(delay, context.Time, stop);
            }
        }
    }

    /// <summary>Fetches the package and works out the launch; null (after reporting Faulted) when the goal cannot run.</summary>
    private async Task<InstanceLaunch?> PrepareAsync(CancellationToken stop)
    {
        if (_adopted is null)
        {
            reporting.Report(InstanceStates.Downloading, null);
        }

        var goal = state.Goal;
        CachedPackage package;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                package = await context.Packages.GetAsync(goal.PackageSha256, goal.PackagePath, stop);
                break;
            }
            catch (Exception e) when (e is PackageCacheException or HttpRequestException or IOException && !stop.IsCancellationRequested)
            {
                reporting.Report(Unreachable(e) ? InstanceStates.Downloading : InstanceStates.Faulted,
                    $"package {goal.PackageSha256[..12]} could not be fetched: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : string.Empty)}; retrying");
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, attempt)), context.Time, stop);
            }
        }

        goal = state.Goal;
        var role = package.Definition.FindRole(goal.Role);
        if (role is null)
        {
            reporting.Report(InstanceStates.Faulted, $"the package has no role '{goal.Role}'");
            return null;
        }

        var driverName = DriverNames.Of(role.Driver);
        if (!context.Drivers.TryGetValue(driverName, out var driver))
        {
            reporting.Report(InstanceStates.Faulted, $"this node cannot run the {driverName} driver ({context.DriverUnavailable.GetValueOrDefault(driverName, "unknown driver")})");
            return null;
        }

        state.Driver = driver;
        string? imageRootfs = null;
        if (role.Driver == RoleDriver.Container)
        {
            for (var attempt = 1; imageRootfs is null; attempt++)
            {
                try
                {
                    imageRootfs = await context.Images.GetAsync(goal.ImageSha256, goal.ImagePath, stop);
                }
                catch (Exception e) when (e is PackageCacheException or HttpRequestException or IOException && !stop.IsCancellationRequested)
                {
                    reporting.Report(Unreachable(e) ? InstanceStates.Downloading : InstanceStates.Faulted,
                        $"image {role.Image} ({goal.ImageSha256[..Math.Min(12, goal.ImageSha256.Length)]}) could not be fetched: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : string.Empty)}; retrying");
                    await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, attempt)), context.Time, stop);
                }
            }
        }

        goal = state.Goal;
        var adopted = _adopted;
        var reload = false;
        if (adopted is not null && driver.IsRunning(adopted.Id, adopted.Pid, adopted.StartTime))
        {
            lock (state.Lock)
            {
                state.Ports = adopted.Ports;
                state.Directory = adopted.Directory;
                state.Running = new RunningProcess(adopted.Pid, adopted.StartTime, null, adopted.Id);
            }

            context.Ports.Reserve(adopted.Ports.Values);
            // Settings changed (by a signalled reload) while no agent ran: the process gets the file and SIGHUP now.
            reload = adopted.SettingsKey is not null && adopted.SettingsKey != RunnerState.SettingsKey(goal);
        }
        else
        {
            var ports = role.Endpoints.ToDictionary(e => e.Name, _ => context.Ports.Allocate());
            lock (state.Lock)
            {
                state.Ports = ports;
                state.Directory = Path.Combine(context.InstancesDirectory, goal.Service, goal.Role, $"{goal.Index}-g{goal.Generation}");
            }
        }

        _adopted = null;
        InstanceLaunch launch;
        lock (state.Lock)
        {
            goal = state.Goal;
            launch = new InstanceLaunch
            {
                Id = goal.InstanceId,
                Role = role,
                Directory = state.Directory!,
                RoleDirectory = package.RoleDirectory(goal.Role),
                ImageRootfs = imageRootfs,
                RealCpus = [.. goal.Cpus.Select(context.Topology.RealCpu)],
                MemoryMiB = goal.MemoryMib,
                Environment = InstanceEnvironment.For(role, goal, state.Ports, context.Options),
                RunAs = context.Uids?.Claim(goal.Uid, goal.Service),
            };
        }

        if (state.Running is null)
        {
            PrepareDirectory(launch);
        }

        description.Write(launch);
        if (reload && state.Running is { } running)
        {
            driver.Signal(running, Posix.SIGHUP);
            journalChanged();
        }

        return launch;
    }

    /// <summary>
    /// The instance folder and its logs (the agent's: the instance can neither replace its launch files nor plant a
    /// link where the agent writes its logs), then the driver's disk, before anything of the instance runs. Each step is
    /// idempotent, so a restart sets up again what went missing since the first run.
    /// </summary>
    public void PrepareDirectory(InstanceLaunch launch)
    {
        if (launch.RunAs is not null)
        {
            for (var dir = Path.GetDirectoryName(launch.Directory)!; dir.Length > context.InstancesDirectory.Length; dir = Path.GetDirectoryName(dir)!)
            {
                Isolation.StateFolders.Create(dir, Isolation.StateFolders.PassThrough);
            }

            Isolation.StateFolders.Create(launch.Directory, Isolation.StateFolders.PassThrough);
            Isolation.StateFolders.Create(Path.Combine(launch.Directory, "logs"), Isolation.StateFolders.Private);
        }

        Directory.CreateDirectory(Path.Combine(launch.Directory, "logs"));
        state.Driver.PrepareDisk(launch);
    }

    /// <summary>
    /// A download that got no answer at all (the controller restarting, or another one being chosen): the instance is
    /// still Downloading, with the reason, not Faulted; a wrong or refused blob is a fault.
    /// </summary>
    private static bool Unreachable(Exception e) => e is HttpRequestException { StatusCode: null } || e.InnerException is HttpRequestException { StatusCode: null };
}
