using Heddle.Controller.Store;

namespace Heddle.Controller.HostRollouts;

/// <summary>Why a rollout cannot start: a sentence and which kind of problem it is (for the HTTP status).</summary>
public sealed record HostRolloutRefusal(HostRolloutRefusalKind Kind, string Message);

public enum HostRolloutRefusalKind
{
    Invalid,
    UnknownImage,
    Conflict,
}

/// <summary>
/// Makes a new host rollout from what is registered: every machine set to boot a host image whose node exists, in
/// upgrade-domain order (the node's <c>upgrade-domain</c> label, else its fault domain; then its name). Pure: the
/// caller reads the store and writes the result.
/// </summary>
public static class HostRolloutPlanner
{
    /// <summary>The label that puts a node in an upgrade domain of its own choosing; without it the fault domain is its upgrade domain.</summary>
    public const string UpgradeDomainLabel = "upgrade-domain";

    public const int MaxParallelLimit = 100;

    public static string DomainOf(NodeRecord node) => node.Labels.TryGetValue(UpgradeDomainLabel, out var domain) && domain.Length > 0 ? domain : node.FaultDomain;

    public static (HostRollout? Rollout, HostRolloutRefusal? Refusal) Plan(string image, int maxParallel, IReadOnlyList<HostImageRecord> images, IReadOnlyList<MachineRecord> machines,
        IReadOnlyList<NodeRecord> nodes, HostRollout? current, DateTimeOffset now)
    {
        if (maxParallel is < 1 or > MaxParallelLimit)
        {
            return (null, new(HostRolloutRefusalKind.Invalid, $"--max-parallel {maxParallel} is not one: give a number from 1 to {MaxParallelLimit}; nothing was changed"));
        }

        if (!images.Any(i => i.Name == image))
        {
            var names = images.Select(i => i.Name).ToList();
            return (null, new(HostRolloutRefusalKind.UnknownImage, $"no host image '{Printable.Of(image)}'"
                + (names.Count == 0 ? "; there are none: 'heddle hostimage build NAME' makes one" : $"; host images: {string.Join(", ", names)}") + "; nothing was changed"));
        }

        if (current is { IsFinished: false })
        {
            return (null, new(HostRolloutRefusalKind.Conflict, $"a host rollout to {current.Image} is {current.Phase} ({current.Done.Count} of {current.Order.Count} node(s) done): "
                + "wait for it to end, or 'heddle hostimage rollout rollback' it, before starting another; nothing was changed"));
        }

        var byName = nodes.ToDictionary(n => n.Name, StringComparer.Ordinal);
        var onImages = machines.Where(m => m.HostImage is not null).ToList();
        var targets = onImages.Where(m => byName.ContainsKey(m.Name))
            .Select(m => new HostRolloutTarget(m.Name, m.Name, DomainOf(byName[m.Name])))
            .OrderBy(t => t.Domain, StringComparer.Ordinal).ThenBy(t => t.Node, StringComparer.Ordinal)
            .ToList();
        if (targets.Count == 0)
        {
            return (null, new(HostRolloutRefusalKind.Conflict, onImages.Count == 0
                ? $"no machine boots a host image ({machines.Count} machine(s) registered): 'heddle machine add MAC --name N --fault-domain FD --image IMAGE' registers one; nothing was changed"
                : $"no machine that boots a host image has joined as a node yet ({string.Join(", ", onImages.Select(m => m.Name))}); nothing was changed"));
        }

        return (new HostRollout
        {
            Image = image,
            MaxParallel = maxParallel,
            Order = targets,
            PreviousImages = targets.ToDictionary(t => t.Machine, t => onImages.First(m => m.Name == t.Machine).HostImage!, StringComparer.Ordinal),
            Started = now,
        }, null);
    }
}
