using Heddle.Model.Diagnostics;
using Heddle.Model.Validation;
using Heddle.Model.Yaml;

namespace Heddle.Model.Configuration;

/// <summary>Turns a model configuration file into a <see cref="ModelConfiguration"/>, reporting every problem.</summary>
public static class ModelConfigurationParser
{
    public static string FileNameFor(string service) => $"{service}.config.yaml";

    public static ModelConfiguration? Parse(string yaml, DiagnosticBag diagnostics, string file) =>
        Parse(new StringReader(yaml), diagnostics, file);

    public static ModelConfiguration? Parse(TextReader yaml, DiagnosticBag diagnostics, string file)
    {
        var root = YamlTreeLoader.Load(yaml, file, diagnostics);
        if (root is null)
        {
            if (!diagnostics.HasErrors)
            {
                diagnostics.Add(SourceLocation.WholeFile(file), DiagnosticCodes.MissingField, "the configuration is empty; it needs 'service' and 'roles'");
            }

            return null;
        }

        var reader = new SchemaReader(file, diagnostics);
        var fields = reader.Object(root, "the configuration", "service", "upgradeDomains", "roles", "upgrade");
        if (fields is null)
        {
            return null;
        }

        var service = reader.String(fields.Required("service"), "service");
        var upgradeDomains = reader.Int(fields["upgradeDomains"], "upgradeDomains", 1, 20);
        var roles = new List<RoleConfiguration>();
        foreach (var entry in reader.Map(fields.Required("roles", " with an instance count for each role"), "roles"))
        {
            if (ReadRole(reader, entry) is { } role)
            {
                roles.Add(role);
            }
        }

        var upgrade = ReadUpgrade(reader, fields["upgrade"]);
        return new ModelConfiguration { Service = service ?? string.Empty, UpgradeDomains = upgradeDomains, Roles = roles, Upgrade = upgrade };
    }

    private static readonly Dictionary<string, UpgradeMode> Modes = new() { ["auto"] = UpgradeMode.Auto, ["manual"] = UpgradeMode.Manual };
    private static readonly Dictionary<string, UpgradeFailureAction> FailureActions = new() { ["rollback"] = UpgradeFailureAction.Rollback, ["pause"] = UpgradeFailureAction.Pause };

    private static UpgradePolicy ReadUpgrade(SchemaReader reader, YNode? node)
    {
        var fields = reader.Object(node, "upgrade", "mode", "healthCheckStable", "upgradeDomainTimeout", "failureAction");
        if (fields is null)
        {
            return UpgradePolicy.Default;
        }

        var defaults = UpgradePolicy.Default;
        return new UpgradePolicy
        {
            Mode = reader.Choice(fields["mode"], "upgrade mode", Modes) ?? defaults.Mode,
            HealthCheckStable = reader.Duration(fields["healthCheckStable"], "upgrade healthCheckStable", TimeSpan.Zero, TimeSpan.FromHours(1)) ?? defaults.HealthCheckStable,
            UpgradeDomainTimeout = reader.Duration(fields["upgradeDomainTimeout"], "upgrade upgradeDomainTimeout", TimeSpan.FromSeconds(1), TimeSpan.FromHours(24)) ?? defaults.UpgradeDomainTimeout,
            FailureAction = reader.Choice(fields["failureAction"], "upgrade failureAction", FailureActions) ?? defaults.FailureAction,
        };
    }

    private static RoleConfiguration? ReadRole(SchemaReader reader, YEntry entry)
    {
        var subject = $"role '{entry.Key.Value}'";
        var fields = reader.Object(entry.Value, subject, "instances", "settings");
        if (fields is null)
        {
            return null;
        }

        int? instances = null;
        if (fields.Required("instances") is { } instancesNode)
        {
            instances = reader.Int(instancesNode, $"{subject} instances", int.MinValue, int.MaxValue);
            if (instances is < ModelConfiguration.MinInstances or > ModelConfiguration.MaxInstances)
            {
                reader.Report(instancesNode, DiagnosticCodes.InstanceCountOutOfRange,
                    $"{subject} instances {instances} is outside {ModelConfiguration.MinInstances}..{ModelConfiguration.MaxInstances}");
                instances = null;
            }
        }

        var settings = new List<SettingValue>();
        foreach (var setting in reader.Map(fields["settings"], $"{subject} settings"))
        {
            if (!reader.CheckName(setting.Key, $"{subject} setting", Names.IsSettingName, Names.SettingNameRule))
            {
                continue;
            }

            var value = setting.Value is YScalar { IsNull: true } ? string.Empty : reader.String(setting.Value, $"{subject} setting '{setting.Key.Value}'");
            if (value is not null)
            {
                settings.Add(new SettingValue(setting.Key.Value, value, reader.At(setting.Key)));
            }
        }

        // Returned even when the count is bad (the diagnostics say so) so the cross-checks do not report the role as unconfigured.
        return new RoleConfiguration { Name = entry.Key.Value, Instances = instances ?? 0, Settings = settings, Location = reader.At(entry.Key) };
    }
}
