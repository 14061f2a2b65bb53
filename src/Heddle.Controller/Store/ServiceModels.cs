using System.Collections.Concurrent;
using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;

namespace Heddle.Controller.Store;

/// <summary>A service's definition and configuration as accepted (both were validated before they were stored).</summary>
public sealed record ServiceModel(ServiceDefinition Definition, ModelConfiguration Configuration)
{
    public int UpgradeDomains => Configuration.UpgradeDomains ?? Definition.UpgradeDomains;

    /// <summary>Whether <paramref name="instances"/> are exactly this model's count, every one Ready at <paramref name="revision"/> and in rotation.</summary>
    public bool AllReadyAt(IReadOnlyCollection<InstanceRecord> instances, long revision) =>
        instances.Count == Configuration.Roles.Sum(r => r.Instances)
        && instances.All(i => i.Revision == revision && i.RunningRevision == revision && i.State == InstanceState.Ready && !i.Draining);

    public IReadOnlyDictionary<string, string> SettingsOf(string role) =>
        Configuration.FindRole(role)?.Settings.ToDictionary(s => s.Name, s => s.Value) ?? [];
}

/// <summary>Parses stored models once per (package, configuration) and keeps the result.</summary>
public sealed class ServiceModels(IClusterStore store)
{
    private readonly ConcurrentDictionary<(string Package, string Configuration), ServiceModel?> _cache = new();

    public ServiceModel? For(ServiceRecord service) => For(service.PackageSha256, service.Configuration);

    /// <summary>The model, or null while its package is not in this controller's copy of the store (or the model does not parse); a null is not kept, so a package that arrives later is found.</summary>
    public ServiceModel? For(string packageSha256, string configuration)
    {
        var key = (packageSha256, configuration);
        if (_cache.TryGetValue(key, out var known))
        {
            return known;
        }

        var package = store.GetPackage(packageSha256);
        if (package is null)
        {
            return null;
        }

        var diagnostics = new DiagnosticBag();
        var definition = ServiceDefinitionParser.Parse(package.ServiceYaml, diagnostics);
        var parsed = ModelConfigurationParser.Parse(configuration, diagnostics, "configuration");
        return _cache.GetOrAdd(key, definition is null || parsed is null || diagnostics.HasErrors ? null : new ServiceModel(definition, parsed));
    }
}
