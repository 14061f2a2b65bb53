using System.Text.Json;
using System.Text.Json.Serialization;
using Heddle.Model.Diagnostics;

namespace Heddle.Cli;

/// <summary>Where commands write, and the shared ways they print diagnostics and JSON.</summary>
internal sealed class CliConsole(TextWriter stdout, TextWriter stderr)
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public TextWriter Out { get; } = stdout;

    public TextWriter Error { get; } = stderr;

    public void WriteJson<T>(T value) => Out.WriteLine(JsonSerializer.Serialize(value, Json));

    public void WriteDiagnostics(DiagnosticBag diagnostics)
    {
        foreach (var diagnostic in diagnostics.Sorted())
        {
            Error.WriteLine(diagnostic.ToString());
        }
    }

    public static object ToJson(Diagnostic d) =>
        new { file = d.Location.File, line = d.Location.Line, column = d.Location.Column, code = d.Code, message = d.Message };
}
