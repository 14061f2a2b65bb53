using System.Globalization;
using Heddle.Model.Diagnostics;
using Heddle.Model.Yaml;

namespace Heddle.Model.Configuration;

/// <summary>
/// Changes one value of a model configuration in its text, leaving everything else (comments, order, layout) as the
/// user wrote it, so that a configuration changed by `heddle scale` is still the user's file with one number changed.
/// </summary>
public static class ModelConfigurationEditor
{
    /// <summary>The text with role <paramref name="role"/>'s instance count set to <paramref name="instances"/>; null (with the reason) when it cannot be done.</summary>
    public static string? SetInstances(string yaml, string role, int instances, out string? error)
    {
        error = null;
        var diagnostics = new DiagnosticBag();
        var root = YamlTreeLoader.Load(new StringReader(yaml), "configuration", diagnostics);
        var roleNode = (root as YMapping)?.Entries.FirstOrDefault(e => e.Key.Value == "roles")?.Value as YMapping;
        var fields = roleNode?.Entries.FirstOrDefault(e => e.Key.Value == role)?.Value as YMapping;
        if (diagnostics.HasErrors || fields?.Entries.FirstOrDefault(e => e.Key.Value == "instances")?.Value is not YScalar { IsPlain: true } count)
        {
            error = $"the configuration has no instance count for role '{role}'";
            return null;
        }

        var lines = yaml.Split('\n');
        var line = count.Line - 1;
        var start = count.Column - 1;
        if (line < 0 || line >= lines.Length || start < 0 || start + count.Value.Length > lines[line].Length
            || string.CompareOrdinal(lines[line], start, count.Value, 0, count.Value.Length) != 0)
        {
            error = $"the instance count of role '{role}' could not be found in the configuration's text";
            return null;
        }

        lines[line] = string.Concat(lines[line].AsSpan(0, start), instances.ToString(CultureInfo.InvariantCulture), lines[line].AsSpan(start + count.Value.Length));
        return string.Join('\n', lines);
    }
}
