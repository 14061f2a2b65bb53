using Heddle.Agent.Node;
using Heddle.Agent.Probes;
using Heddle.Model.Definition;

namespace Heddle.Agent.Hollow;

/// <summary>
/// The machine of a hollow node: no isolation and no host probing (no root checks, cgroups, runc, host programs or
/// sysfs topology beyond the claimed cores), <see cref="HollowDriver"/> in place of the process driver, a
/// <see cref="ReachabilityListener"/> in place of the log server, the process-wide <see cref="HollowPackages"/>, and a
/// probe that passes as soon as the driver has "started" the instance. No housekeeping: there are no logs or disks.
/// </summary>
public static class HollowMachine
{
    /// <summary>What `heddle nodes` says of a hollow node's isolation.</summary>
    public const string Description = "hollow: a simulated node of `heddle hollow`; its instances start nothing";

    /// <summary>A hollow instance is looked at again after this long: it is healthy while it "runs", so more looks would only cost the process CPU.</summary>
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMinutes(10);

    public static NodeMachine Create(HollowPackages packages, TimeSpan readyAfter, TimeProvider time, Action<ReachabilityListener>? listening = null) => new()
    {
        Isolated = false,
        ChecksHostPrograms = false,
        Topology = o => NodeTopology.Detect(o.ClaimCores ?? throw new ArgumentException("a hollow node claims its cores", nameof(o)), o.ClaimThreadsPerCore),
        Drivers = (_, _) => new NodeDrivers(
            new Dictionary<string, Drivers.IInstanceDriver>(StringComparer.Ordinal) { [DriverNames.Process] = new HollowDriver(DriverNames.Process, readyAfter, time) },
            new Dictionary<string, string>(), // not "container: unavailable": every node would warn of it; the allocator places no container role here anyway
            Description),
        Logs = async (options, _, _, _) =>
        {
            var listener = await ReachabilityListener.StartAsync(options.Address, options.LogPort);
            listening?.Invoke((ReachabilityListener)listener);
            return listener;
        },
        Packages = (_, downloads) => packages.For(downloads),
        Probes = (_, _, _, _) => (new RunningProbe(), ProbeInterval, 1),
        Housekeeping = false,
        Isolation = Description,
    };
}
