using System.CommandLine;
using System.Globalization;

namespace Heddle.Cli.Commands;

/// <summary>Durations on the command line: 500ms, 10s, 2m, 1h (a bare number is seconds).</summary>
internal static class Durations
{
    public static Option<TimeSpan> Option(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = $"{description} (e.g. 500ms, 10s, 2m; default {Format(defaultValue)})",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result => Parse(result.Tokens.Single().Value, out var value)
            ? value
            : Fail(result, $"'{result.Tokens.Single().Value}' is not a duration; use a number with ms, s, m or h (for example 10s)"),
    };

    public static bool Parse(string text, out TimeSpan value)
    {
        value = default;
        var units = new (string Suffix, double Seconds)[] { ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600) };
        foreach (var (suffix, seconds) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal) && double.TryParse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0)
            {
                value = TimeSpan.FromSeconds(n * seconds);
                return true;
            }
        }

        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var bare) && bare >= 0)
        {
            value = TimeSpan.FromSeconds(bare);
            return true;
        }

        return false;
    }

    public static string Format(TimeSpan value) => value.TotalSeconds >= 1 ? $"{value.TotalSeconds:0.##}s" : $"{value.TotalMilliseconds:0}ms";

    private static TimeSpan Fail(System.CommandLine.Parsing.ArgumentResult result, string message)
    {
        result.AddError(message);
        return default;
    }
}
