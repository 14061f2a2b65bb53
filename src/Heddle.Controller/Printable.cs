namespace Heddle.Controller;

/// <summary>How a name a client sent is quoted back in an answer or an event: at most 64 characters, control characters as '?'.</summary>
internal static class Printable
{
    public static string Of(string text, int limit = 64) => string.Concat((text.Length > limit ? text[..limit] + "…" : text).Select(c => char.IsControl(c) ? '?' : c));
}
