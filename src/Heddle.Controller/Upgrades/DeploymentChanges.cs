using Heddle.Controller.Store;

namespace Heddle.Controller.Upgrades;

/// <summary>What a new revision changes against the current one, in words for `heddle history`, and whether running instances must be walked to it.</summary>
public sealed record DeploymentChange(string Changes, bool NeedsWalk, string? Refusal);

public static class DeploymentChanges
{
    public static DeploymentChange Describe(ServiceRecord? current, ServiceModel? old, string package, ServiceModel next, IReadOnlyList<InstanceRecord> instances)
    {
        if (current is null || current.Deleting || old is null)
        {
            var count = next.Configuration.Roles.Sum(r => r.Instances);
            return new DeploymentChange($"first deployment: package {package[..12]}, {count} instance(s) of {next.Definition.Roles.Count} role(s)", false, null);
        }

        if (old.UpgradeDomains != next.UpgradeDomains)
        {
            return new DeploymentChange(string.Empty, false,
                $"upgradeDomains cannot change on a deployed service ({old.UpgradeDomains} → {next.UpgradeDomains}): its instances are spread by it; keep {old.UpgradeDomains}, or delete the service and deploy it again");
        }

        var changes = new List<string>();
        if (current.PackageSha256 != package)
        {
            changes.Add($"package {current.PackageSha256[..12]} → {package[..12]}");
        }

        var roles = old.Definition.Roles.Select(r => r.Name).Union(next.Definition.Roles.Select(r => r.Name)).ToList();
        var added = roles.Where(r => old.Definition.FindRole(r) is null).ToList();
        var removed = roles.Where(r => next.Definition.FindRole(r) is null).ToList();
        if (added.Count > 0)
        {
            changes.Add($"roles added: {string.Join(", ", added)}");
        }

        if (removed.Count > 0)
        {
            changes.Add($"roles removed: {string.Join(", ", removed)}");
        }

        var settings = roles.Where(r => !added.Contains(r) && !removed.Contains(r)).SelectMany(r => ChangedSettings(r, old, next)).ToList();
        if (settings.Count > 0)
        {
            changes.Add($"settings {string.Join(", ", settings)}");
        }

        var counts = roles
            .Select(r => (Role: r, Before: old.Configuration.FindRole(r)?.Instances ?? 0, After: next.Configuration.FindRole(r)?.Instances ?? 0))
            .Where(c => c.Before != c.After && !added.Contains(c.Role) && !removed.Contains(c.Role))
            .Select(c => $"{c.Role} {c.Before} → {c.After}")
            .ToList();
        if (counts.Count > 0)
        {
            changes.Add($"instances {string.Join(", ", counts)}");
        }

        if (old.Configuration.Upgrade != next.Configuration.Upgrade)
        {
            changes.Add("upgrade settings");
        }

        var needsWalk = instances.Any(i => !i.Draining
            && RevisionModels.Compare(current.PackageSha256, old, package, next, i.Role) is InstanceChange.Restart or InstanceChange.Signal or InstanceChange.Replace);
        return new DeploymentChange(changes.Count == 0 ? "no change" : string.Join("; ", changes), needsWalk, null);
    }

    private static IEnumerable<string> ChangedSettings(string role, ServiceModel old, ServiceModel next)
    {
        var before = old.SettingsOf(role);
        var after = next.SettingsOf(role);
        return before.Keys.Union(after.Keys).Order(StringComparer.Ordinal)
            .Where(name => before.GetValueOrDefault(name) != after.GetValueOrDefault(name))
            .Select(name => $"{role}.{name}");
    }
}
