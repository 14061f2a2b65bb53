using System.Text.RegularExpressions;

namespace Heddle.Model.Validation;

/// <summary>The naming rules. Service, role and endpoint names become DNS labels, so they follow RFC 1123 labels.</summary>
public static partial class Names
{
    public static bool IsDnsLabel(string name) => name.Length is >= 1 and <= 63 && DnsLabel().IsMatch(name);

    public static string DnsLabelRule => "use 1 to 63 lower-case letters, digits or '-', starting with a letter and not ending with '-'";

    public static bool IsSettingName(string name) => name.Length is >= 1 and <= 128 && SettingName().IsMatch(name);

    public static string SettingNameRule => "use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter";

    public static bool IsEnvironmentName(string name) => name.Length is >= 1 and <= 256 && EnvironmentName().IsMatch(name);

    /// <summary>The reserved prefix an environment variable's name starts with (LD_ or HEDDLE_, any case), or null.</summary>
    public static string? ReservedEnvironmentPrefix(string name) =>
        name.StartsWith("LD_", StringComparison.OrdinalIgnoreCase) ? "LD_"
        : name.StartsWith("HEDDLE_", StringComparison.OrdinalIgnoreCase) ? "HEDDLE_"
        : null;

    public static string EnvironmentNameRule => "use letters, digits and '_', not starting with a digit";

    public static bool IsLabelKey(string name) => name.Length is >= 1 and <= 128 && LabelKey().IsMatch(name);

    public static string LabelKeyRule => "use 1 to 128 letters, digits, '.', '_', '/' or '-'";

    /// <summary>How a name appears in an environment variable: upper-cased, anything but A-Z, 0-9 and '_' as '_'.</summary>
    public static string ToEnvironmentSuffix(string name)
    {
        var chars = name.ToUpperInvariant().ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!(chars[i] is >= 'A' and <= 'Z' or >= '0' and <= '9' or '_'))
            {
                chars[i] = '_';
            }
        }

        return new string(chars);
    }

    [GeneratedRegex("^[a-z]([a-z0-9-]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_.-]*$")]
    private static partial Regex SettingName();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvironmentName();

    [GeneratedRegex("^[A-Za-z0-9._/-]+$")]
    private static partial Regex LabelKey();
}
