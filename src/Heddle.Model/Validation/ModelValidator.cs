using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;

namespace Heddle.Model.Validation;

/// <summary>Checks a configuration against the definition it configures.</summary>
public static class ModelValidator
{
    public static void CheckConfiguration(ServiceDefinition definition, ModelConfiguration configuration, string configFile, DiagnosticBag diagnostics)
    {
        if (definition.Name.Length > 0 && configuration.Service.Length > 0 && configuration.Service != definition.Name)
        {
            diagnostics.Add(new SourceLocation(configFile, 1, 1), DiagnosticCodes.ServiceMismatch,
                $"the configuration is for service '{configuration.Service}' but the package holds service '{definition.Name}'");
        }

        foreach (var roleConfig in configuration.Roles)
        {
            var role = definition.FindRole(roleConfig.Name);
            if (role is null)
            {
                var nearest = Suggestions.Nearest(roleConfig.Name, definition.Roles.Select(r => r.Name));
                var hint = nearest is null ? $"the service's roles are {string.Join(", ", definition.Roles.Select(r => r.Name))}" : $"did you mean '{nearest}'?";
                diagnostics.Add(roleConfig.Location, DiagnosticCodes.UnknownConfigRole,
                    $"role '{roleConfig.Name}' is configured but service '{definition.Name}' does not define it; {hint}");
                continue;
            }

            foreach (var value in roleConfig.Settings.Where(v => role.Settings.All(s => s.Name != v.Name)))
            {
                var nearest = Suggestions.Nearest(value.Name, role.Settings.Select(s => s.Name));
                var hint = nearest is null ? $"declare it under role '{role.Name}' settings in service.yaml" : $"did you mean '{nearest}'?";
                diagnostics.Add(value.Location, DiagnosticCodes.SettingNotDeclared,
                    $"role '{role.Name}' setting '{value.Name}' has a value but the role does not declare it; {hint}");
            }

            foreach (var declared in role.Settings.Where(s => roleConfig.Settings.All(v => v.Name != s.Name)))
            {
                diagnostics.Add(roleConfig.Location, DiagnosticCodes.SettingNotValued,
                    $"role '{role.Name}' declares setting '{declared.Name}' but the configuration gives it no value; add it under roles.{role.Name}.settings");
            }
        }

        foreach (var role in definition.Roles.Where(r => configuration.FindRole(r.Name) is null))
        {
            diagnostics.Add(new SourceLocation(configFile, 1, 1), DiagnosticCodes.RoleNotConfigured,
                $"role '{role.Name}' has no instance count; add roles.{role.Name}.instances to the configuration");
        }
    }
}
