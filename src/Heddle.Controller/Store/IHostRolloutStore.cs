using Heddle.Controller.HostRollouts;

namespace Heddle.Controller.Store;

/// <summary>What starting a host rollout came to.</summary>
public enum HostRolloutStartOutcome
{
    Started,

    /// <summary>Another rollout has not ended: nothing was written.</summary>
    AlreadyRunning,
}

/// <summary>The one host rollout there is at a time (running, or the last one, ended). Reads from this controller's copy; writes commit before their task completes.</summary>
public interface IHostRolloutStore
{
    HostRollout? GetHostRollout();

    /// <summary>Writes a new rollout (at version 1), unless one has not ended; a rollout that starts at once on another controller makes one of the two fail.</summary>
    Task<HostRolloutStartOutcome> StartHostRolloutAsync(HostRollout rollout, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces the rollout with <paramref name="next"/> if the stored one is still at <paramref name="next"/>'s
    /// <see cref="HostRollout.Version"/> (the one it was computed from), and, when <paramref name="fence"/> is given, the
    /// leader's term still holds (its fence key at that revision); stored one version higher. In the same commit, each of
    /// <paramref name="imageSets"/> sets a machine to boot a host image from its next boot on (the machine and the image
    /// must exist at the commit, as for <see cref="IMachineStore.SetMachineHostImageAsync"/>): a leader whose term ended
    /// sets no machine's image either. False when any of it does not hold; nothing is written then.
    /// </summary>
    Task<bool> UpdateHostRolloutAsync(HostRollout next, CancellationToken cancellationToken = default, (string Key, long Revision)? fence = null, IReadOnlyList<NewEvent>? told = null,
        IReadOnlyList<(string Machine, string Image)>? imageSets = null);
}
