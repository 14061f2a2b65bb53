using System.Globalization;

namespace Heddle.Model.Validation;

/// <summary>Durations as people write them: 500ms, 10s, 2m, 1h; a bare number is seconds.</summary>
public static class DurationText
{
    public const string Rule = "use a number with ms, s, m or h (for example 10s)";

    public static bool TryParse(string text, out TimeSpan value)
    {
        value = default;
        var units = new (string Suffix, double Seconds)[] { ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600) };
        foreach (var (suffix, seconds) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0 && double.IsFinite(n) && n * seconds < 1e9)
            {
                value = TimeSpan.FromSeconds(n * seconds);
                return true;
            }
        }

        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var bare) && bare >= 0 && bare < 1e9)
        {
            value = TimeSpan.FromSeconds(bare);
            return true;
        }

        return false;
    }

    public static string Format(TimeSpan value) =>
        value == TimeSpan.Zero ? "0s"
        : value.TotalSeconds >= 1 ? value.TotalSeconds % 3600 == 0 ? $"{value.TotalHours:0}h" : value.TotalSeconds % 60 == 0 ? $"{value.TotalMinutes:0}m" : $"{value.TotalSeconds:0.##}s"
        : $"{value.TotalMilliseconds:0}ms";
}
