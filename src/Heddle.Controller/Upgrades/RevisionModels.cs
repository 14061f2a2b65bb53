using Heddle.Controller.Store;
using Heddle.Model.Definition;

namespace Heddle.Controller.Upgrades;

/// <summary>What bringing one running instance to another revision takes.</summary>
public enum InstanceChange
{
    /// <summary>Same package and settings: it is relabelled, nothing restarts.</summary>
    None,

    /// <summary>Only its settings changed and its role reloads them on SIGHUP: heddle-instance.json is rewritten and it is signalled.</summary>
    Signal,

    /// <summary>Stopped and started again where it is, at the new revision.</summary>
    Restart,

    /// <summary>Its size changed: it is released and placed again (maybe elsewhere) at the new revision.</summary>
    Replace,

    /// <summary>Its role is not in the new revision: it is removed, not upgraded.</summary>
    Gone,
}

/// <summary>One service's kept revisions with their parsed models, read once per reconcile pass.</summary>
public sealed class RevisionModels(IClusterStore store, ServiceModels models, string service)
{
    private readonly Dictionary<long, (RevisionRecord Record, ServiceModel Model)?> _cache = [];

    public (RevisionRecord Record, ServiceModel Model)? Get(long number)
    {
        if (!_cache.TryGetValue(number, out var entry))
        {
            var record = store.GetRevision(service, number);
            entry = record is not null && models.For(record.PackageSha256, record.Configuration) is { } model ? (record, model) : null;
            _cache[number] = entry;
        }

        return entry;
    }

    /// <summary>What it takes to bring <paramref name="instance"/> from the revision it has to <paramref name="destination"/>.</summary>
    public InstanceChange ChangeOf(InstanceRecord instance, long destination)
    {
        if (instance.Revision == destination)
        {
            return InstanceChange.None;
        }

        var to = Get(destination);
        if (to is null)
        {
            return InstanceChange.Restart;
        }

        var from = Get(instance.Revision);
        return from is null
            ? to.Value.Model.Definition.FindRole(instance.Role) is null ? InstanceChange.Gone : InstanceChange.Restart
            : Compare(from.Value.Record.PackageSha256, from.Value.Model, to.Value.Record.PackageSha256, to.Value.Model, instance.Role);
    }

    /// <summary>What an instance of <paramref name="role"/> running (package, model) <paramref name="from"/> needs to run <paramref name="to"/>.</summary>
    public static InstanceChange Compare(string fromPackage, ServiceModel from, string toPackage, ServiceModel to, string role)
    {
        var after = to.Definition.FindRole(role);
        if (after is null)
        {
            return InstanceChange.Gone;
        }

        var before = from.Definition.FindRole(role);
        if (before is null)
        {
            return InstanceChange.Restart;
        }

        if (before.Size.Cores != after.Size.Cores || before.Size.MemoryMiB != after.Size.MemoryMiB)
        {
            return InstanceChange.Replace;
        }

        if (fromPackage != toPackage)
        {
            return InstanceChange.Restart;
        }

        var old = from.SettingsOf(role);
        var now = to.SettingsOf(role);
        if (old.Count == now.Count && old.All(s => now.TryGetValue(s.Key, out var v) && v == s.Value))
        {
            return InstanceChange.None;
        }

        return after.OnSettingsChange == SettingsChangeAction.Signal ? InstanceChange.Signal : InstanceChange.Restart;
    }
}
