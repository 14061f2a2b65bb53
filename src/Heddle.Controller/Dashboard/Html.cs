using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;

namespace Heddle.Controller.Dashboard;

/// <summary>
/// A page under construction. Everything that comes from the store (names, reasons, log lines: a tenant's own words) goes
/// through <see cref="Text"/> or an attribute, which encode it; only this code's own markup goes in raw.
/// </summary>
internal sealed class Html
{
    /// <summary>Encodes what markup needs (&lt; &gt; &amp; quotes), and leaves other characters (names in any script) as they are.</summary>
    private static readonly HtmlEncoder Encoder = HtmlEncoder.Create(System.Text.Unicode.UnicodeRanges.All);

    private readonly StringBuilder _text = new();

    /// <summary>Markup written by this code (never anything from the store or the request).</summary>
    public Html Raw(string markup)
    {
        _text.Append(markup);
        return this;
    }

    /// <summary>Text, encoded.</summary>
    public Html Text(string? text)
    {
        _text.Append(Encoder.Encode(text ?? string.Empty));
        return this;
    }

    /// <summary>An element with encoded text and encoded attributes: <c>Tag("td", "x", ("class", "c"))</c>.</summary>
    public Html Tag(string name, string? text, params (string Name, string? Value)[] attributes)
    {
        Open(name, attributes);
        Text(text);
        return Close(name);
    }

    public Html Open(string name, params (string Name, string? Value)[] attributes)
    {
        _text.Append('<').Append(name);
        foreach (var (attribute, value) in attributes)
        {
            if (value is not null)
            {
                _text.Append(' ').Append(attribute).Append("=\"").Append(Encoder.Encode(value)).Append('"');
            }
        }

        _text.Append('>');
        return this;
    }

    public Html Close(string name)
    {
        _text.Append("</").Append(name).Append('>');
        return this;
    }

    /// <summary>A link to a path of this dashboard (the path's parts are URL-encoded by the caller with <see cref="Url"/>).</summary>
    public Html Link(string href, string text, string? cssClass = null) => Tag("a", text, ("href", href), ("class", cssClass));

    /// <summary>A row of cells, each text encoded.</summary>
    public Html Row(params string?[] cells)
    {
        Raw("<tr>");
        foreach (var cell in cells)
        {
            Tag("td", cell);
        }

        return Raw("</tr>");
    }

    public Html HeaderRow(params string[] cells)
    {
        Raw("<tr>");
        foreach (var cell in cells)
        {
            Tag("th", cell);
        }

        return Raw("</tr>");
    }

    public static string Url(string part) => Uri.EscapeDataString(part);

    /// <summary>A time for people: relative when recent ("4 s ago"), with the exact UTC time in the title.</summary>
    public Html Time(DateTimeOffset time, DateTimeOffset now)
    {
        var age = now - time;
        var relative = age.TotalSeconds < 0 ? "now"
            : age.TotalSeconds < 90 ? $"{age.TotalSeconds:0} s ago"
            : age.TotalMinutes < 90 ? $"{age.TotalMinutes:0} min ago"
            : age.TotalHours < 36 ? $"{age.TotalHours:0} h ago"
            : time.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);
        return Tag("time", relative, ("datetime", time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture)), ("title", time.UtcDateTime.ToString("u", CultureInfo.InvariantCulture)));
    }

    /// <summary>One of a fixed palette of colour classes, the same for the same name on every page and every controller.</summary>
    public static string ColourOf(string name)
    {
        var hash = 2166136261u;
        foreach (var c in name)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return $"c{hash % Palette}";
    }

    /// <summary>How many colour classes dashboard.css defines (c0 … c11).</summary>
    public const int Palette = 12;

    /// <summary>A width class for a bar (w0 … w100 in steps of 5): the style sheet sets them, as inline styles are not allowed.</summary>
    public static string Width(double percent) => $"w{(int)Math.Round(Math.Clamp(percent, 0, 100) / 5) * 5}";

    public override string ToString() => _text.ToString();
}
