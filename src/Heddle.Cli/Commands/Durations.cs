using System.CommandLine;
using Heddle.Model.Validation;

namespace Heddle.Cli.Commands;

/// <summary>Durations on the command line: 500ms, 10s, 2m, 1h (a bare number is seconds), read as the model reads them.</summary>
internal static class Durations
{
    public static Option<TimeSpan> Option(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = $"{description} (e.g. 500ms, 10s, 2m; default {Format(defaultValue)})",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result => DurationText.TryParse(result.Tokens.Single().Value, out var value)
            ? value
            : Fail(result, $"'{result.Tokens.Single().Value}' is not a duration; {DurationText.Rule}"),
    };

    public static string Format(TimeSpan value) => DurationText.Format(value);

    private static TimeSpan Fail(System.CommandLine.Parsing.ArgumentResult result, string message)
    {
        result.AddError(message);
        return default;
    }
}
