using System.Globalization;
using Heddle.Model.Diagnostics;
using Heddle.Model.Validation;

namespace Heddle.Model.Yaml;

/// <summary>
/// Reads typed values out of a <see cref="YNode"/> tree and reports, with position, every value of the
/// wrong shape. Each method returns null (or a default) after reporting, so parsing carries on and the
/// user sees every problem in one run.
/// </summary>
public sealed class SchemaReader(string file, DiagnosticBag diagnostics)
{
    public string File { get; } = file;

    public DiagnosticBag Diagnostics { get; } = diagnostics;

    public SourceLocation At(YNode node) => new(File, node.Line, node.Column);

    public void Report(YNode node, string code, string message) => Diagnostics.Add(At(node), code, message);

    /// <summary>The fields of a mapping with a fixed set of keys: reports unknown and duplicate keys.</summary>
    public Fields? Object(YNode? node, string subject, params string[] knownKeys)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not YMapping mapping)
        {
            Report(node, DiagnosticCodes.WrongType, $"{subject} must be a mapping of {string.Join(", ", knownKeys)}, not {node.KindDescription}");
            return null;
        }

        var found = new Dictionary<string, YEntry>(StringComparer.Ordinal);
        foreach (var entry in mapping.Entries)
        {
            var key = entry.Key.Value;
            if (!knownKeys.Contains(key, StringComparer.Ordinal))
            {
                var nearest = Suggestions.Nearest(key, knownKeys);
                var hint = nearest is null ? $"known keys are {string.Join(", ", knownKeys)}" : $"did you mean '{nearest}'?";
                Report(entry.Key, DiagnosticCodes.UnknownKey, $"{subject} has no key '{key}'; {hint}");
            }
            else if (!found.TryAdd(key, entry))
            {
                Report(entry.Key, DiagnosticCodes.DuplicateKey, $"{subject} has '{key}' twice; keep one");
            }
        }

        return new Fields(this, mapping, subject, found);
    }

    /// <summary>A mapping whose keys are user-chosen names (roles, endpoints, environment): reports duplicates.</summary>
    public IReadOnlyList<YEntry> Map(YNode? node, string subject)
    {
        if (node is null || node is YScalar { IsNull: true })
        {
            return [];
        }

        if (node is not YMapping mapping)
        {
            Report(node, DiagnosticCodes.WrongType, $"{subject} must be a mapping of names to values, not {node.KindDescription}");
            return [];
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var entries = new List<YEntry>();
        foreach (var entry in mapping.Entries)
        {
            if (!seen.Add(entry.Key.Value))
            {
                Report(entry.Key, DiagnosticCodes.DuplicateKey, $"{subject} has '{entry.Key.Value}' twice; keep one");
                continue;
            }

            entries.Add(entry);
        }

        return entries;
    }

    public IReadOnlyList<YNode> List(YNode? node, string subject)
    {
        if (node is null || node is YScalar { IsNull: true })
        {
            return [];
        }

        if (node is not YSequence sequence)
        {
            Report(node, DiagnosticCodes.WrongType, $"{subject} must be a list, not {node.KindDescription}");
            return [];
        }

        return sequence.Items;
    }

    public string? String(YNode? node, string subject)
    {
        switch (node)
        {
            case null:
                return null;
            case YScalar { IsNull: true }:
                Report(node, DiagnosticCodes.MissingField, $"{subject} is empty; give it a value");
                return null;
            case YScalar scalar:
                return scalar.Value;
            default:
                Report(node, DiagnosticCodes.WrongType, $"{subject} must be a text value, not {node.KindDescription}");
                return null;
        }
    }

    public int? Int(YNode? node, string subject, int min, int max)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not YScalar { IsPlain: true, IsNull: false } scalar
            || !long.TryParse(scalar.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            Report(node, DiagnosticCodes.WrongType, $"{subject} must be a whole number, not {node.KindDescription}");
            return null;
        }

        if (value < min || value > max)
        {
            Report(node, DiagnosticCodes.OutOfRange, $"{subject} {value} is outside {min}..{max}");
            return null;
        }

        return (int)value;
    }

    /// <summary>A duration (500ms, 10s, 2m, 1h; a bare number is seconds) within [min, max].</summary>
    public TimeSpan? Duration(YNode? node, string subject, TimeSpan min, TimeSpan max)
    {
        var text = String(node, subject);
        if (text is null)
        {
            return null;
        }

        if (!DurationText.TryParse(text, out var value))
        {
            Report(node!, DiagnosticCodes.WrongType, $"{subject} '{text}' is not a duration; {DurationText.Rule}");
            return null;
        }

        if (value < min || value > max)
        {
            Report(node!, DiagnosticCodes.OutOfRange, $"{subject} {text} is outside {DurationText.Format(min)}..{DurationText.Format(max)}");
            return null;
        }

        return value;
    }

    /// <summary>A value from a closed set of words (driver, kind, protocol): case-sensitive, with a suggestion.</summary>
    public T? Choice<T>(YNode? node, string subject, IReadOnlyDictionary<string, T> allowed)
        where T : struct
    {
        var text = String(node, subject);
        if (text is null)
        {
            return null;
        }

        if (allowed.TryGetValue(text, out var value))
        {
            return value;
        }

        var nearest = Suggestions.Nearest(text, allowed.Keys);
        var hint = nearest is null ? string.Empty : $"; did you mean '{nearest}'?";
        Report(node!, DiagnosticCodes.NotAllowedValue, $"{subject} '{text}' is not one of {string.Join(", ", allowed.Keys)}{hint}");
        return null;
    }

    /// <summary>A user-chosen name: reports it when it breaks the rule and returns whether it is good.</summary>
    public bool CheckName(YScalar key, string subject, Func<string, bool> isValid, string rule)
    {
        if (isValid(key.Value))
        {
            return true;
        }

        Report(key, DiagnosticCodes.BadName, $"{subject} '{key.Value}' is not a valid name; {rule}");
        return false;
    }

    public IReadOnlyList<string> StringList(YNode? node, string subject)
    {
        var result = new List<string>();
        foreach (var item in List(node, subject))
        {
            if (String(item, $"an item of {subject}") is { } text)
            {
                result.Add(text);
            }
        }

        return result;
    }
}

/// <summary>The known fields of one mapping, with the mapping kept for "missing field" positions.</summary>
public sealed class Fields(SchemaReader reader, YMapping mapping, string subject, IReadOnlyDictionary<string, YEntry> found)
{
    public YMapping Mapping { get; } = mapping;

    public YNode? this[string key] => found.TryGetValue(key, out var entry) ? entry.Value : null;

    public YScalar? KeyOf(string key) => found.TryGetValue(key, out var entry) ? entry.Key : null;

    /// <summary>The value of a required key; a missing (or empty) one is reported at the mapping.</summary>
    public YNode? Required(string key, string hint = "")
    {
        var value = this[key];
        if (value is null || value is YScalar { IsNull: true })
        {
            var at = (YNode?)KeyOf(key) ?? Mapping;
            reader.Report(at, DiagnosticCodes.MissingField, $"{subject} needs '{key}'{hint}");
            return null;
        }

        return value;
    }
}
