using System.Globalization;

namespace Heddle.Contracts.Machines;

/// <summary>
/// A network card's MAC address, always written lower-case with colons (52:54:00:12:34:56), the form iPXE's
/// <c>${netX/mac}</c> and <c>ip link</c> print. Parsing takes the usual spellings (colons, dashes, Cisco dots, bare hex)
/// and refuses what no card can have as its own address: a group (multicast or broadcast) address or all zeros.
/// </summary>
public static class MacAddress
{
    /// <summary>The normal form of <paramref name="text"/>, or null with the reason in <paramref name="error"/>.</summary>
    public static string? Normalise(string? text, out string? error)
    {
        error = null;
        var hex = Hex(text?.Trim());
        if (hex is null)
        {
            error = $"'{Show(text)}' is not a MAC address: write six bytes in hex, as 52:54:00:12:34:56 (52-54-00-12-34-56, 5254.0012.3456 and 525400123456 are taken too)";
            return null;
        }

        var first = byte.Parse(hex.AsSpan(0, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        if ((first & 1) != 0)
        {
            error = $"'{Show(text)}' is a group (multicast or broadcast) address, which no network card has as its own: check the machine's MAC";
            return null;
        }

        if (hex.All(c => c == '0'))
        {
            error = "00:00:00:00:00:00 is not a network card's address: check the machine's MAC";
            return null;
        }

        return string.Join(':', Enumerable.Range(0, 6).Select(i => hex.Substring(i * 2, 2)));
    }

    /// <summary>The 12 lower-case hex digits of a MAC in one of the spellings taken, or null.</summary>
    private static string? Hex(string? text)
    {
        if (text is null || text.Length is < 12 or > 17)
        {
            return null;
        }

        string? digits = null;
        if (text.Length == 17 && (Grouped(text, ':', 2) || Grouped(text, '-', 2)))
        {
            digits = text.Replace(":", string.Empty, StringComparison.Ordinal).Replace("-", string.Empty, StringComparison.Ordinal);
        }
        else if (text.Length == 14 && Grouped(text, '.', 4))
        {
            digits = text.Replace(".", string.Empty, StringComparison.Ordinal);
        }
        else if (text.Length == 12)
        {
            digits = text;
        }

        return digits is { Length: 12 } && digits.All(char.IsAsciiHexDigit) ? digits.ToLowerInvariant() : null;
    }

    /// <summary>Whether <paramref name="text"/> is groups of <paramref name="width"/> characters split by <paramref name="separator"/> (one kind only).</summary>
    private static bool Grouped(string text, char separator, int width)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var isSeparatorPlace = (i + 1) % (width + 1) == 0;
            if (isSeparatorPlace != (text[i] == separator))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>At most 40 characters of what was given, control characters shown as '?', for an error sentence.</summary>
    private static string Show(string? text) =>
        text is null ? string.Empty : new string([.. text.Take(40).Select(c => char.IsControl(c) ? '?' : c)]) + (text.Length > 40 ? "..." : string.Empty);
}
