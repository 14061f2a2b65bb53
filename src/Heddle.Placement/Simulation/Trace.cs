using System.Globalization;
using Heddle.Model.Diagnostics;

namespace Heddle.Placement.Simulation;

public enum TraceOpKind
{
    Deploy,
    Scale,
    Delete,
}

/// <summary>One line of a trace. <see cref="Role"/> is null for a delete of a whole service.</summary>
public sealed record TraceOp(
    TraceOpKind Kind, string Tenant, string Service, string? Role, int Instances, int Cpus, int MemoryMiB, int UpgradeDomains,
    IReadOnlyDictionary<string, string> Constraints, int Line);

/// <summary>
/// trace.csv: <c>op,tenant,service,role,instances,cores,memoryMiB,upgradeDomains[,constraints]</c>, one request a
/// line, replayed in order. <c>constraints</c> is optional: <c>key=value;key=value</c>. A first line starting with
/// <c>op,</c> is a header; blank lines and lines starting with '#' are skipped.
/// </summary>
public static class TraceParser
{
    public const string Header = "op,tenant,service,role,instances,cores,memoryMiB,upgradeDomains";

    public static IReadOnlyList<TraceOp>? Parse(string text, string file, DiagnosticBag diagnostics)
    {
        var ops = new List<TraceOp>();
        var deployed = new HashSet<(string, string, string)>();
        var lineNumber = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNumber++;
            var line = rawLine.TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith('#') || lineNumber == 1 && line.StartsWith("op,", StringComparison.Ordinal))
            {
                continue;
            }

            var op = ParseLine(line, lineNumber, file, diagnostics);
            if (op is not null && CheckTarget(op, deployed, file, diagnostics))
            {
                ops.Add(op);
            }
        }

        return diagnostics.HasErrors ? null : ops;
    }

    private static TraceOp? ParseLine(string line, int lineNumber, string file, DiagnosticBag diagnostics)
    {
        var cells = line.Split(',');
        var errors = diagnostics.Items.Count;
        void Error(int cell, string message) =>
            diagnostics.Add(new SourceLocation(file, lineNumber, ColumnOf(cells, cell)), DiagnosticCodes.TraceSyntax, message);

        if (cells.Length is < 8 or > 9)
        {
            Error(0, $"expected 8 or 9 comma-separated columns ({Header}[,constraints]), found {cells.Length}");
            return null;
        }

        TraceOpKind? kind = cells[0].Trim() switch
        {
            "deploy" => TraceOpKind.Deploy,
            "scale" => TraceOpKind.Scale,
            "delete" => TraceOpKind.Delete,
            _ => null,
        };
        if (kind is null)
        {
            Error(0, $"unknown op '{cells[0]}'; use deploy, scale or delete");
            return null;
        }

        string Text(int cell) => cells[cell].Trim();
        int Number(int cell, string what, int min, int max, bool required)
        {
            if (Text(cell).Length == 0)
            {
                if (required)
                {
                    Error(cell, $"{kind.Value.ToString().ToLowerInvariant()} needs {what}");
                }

                return 0;
            }

            if (!int.TryParse(Text(cell), NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            {
                Error(cell, $"{what} '{Text(cell)}' is not a whole number in {min}..{max}");
            }

            return value;
        }

        if (Text(1).Length == 0 || Text(2).Length == 0)
        {
            Error(Text(1).Length == 0 ? 1 : 2, "tenant and service are required");
        }

        var role = Text(3).Length == 0 ? null : Text(3);
        if (role is null && kind != TraceOpKind.Delete)
        {
            Error(3, $"{kind.Value.ToString().ToLowerInvariant()} needs a role");
        }

        var isDeploy = kind == TraceOpKind.Deploy;
        var instances = Number(4, "instances", kind == TraceOpKind.Scale ? 0 : 1, 1000, required: kind != TraceOpKind.Delete);
        var cpus = Number(5, "cores", 1, 1024, isDeploy);
        var memory = Number(6, "memoryMiB", 0, int.MaxValue, isDeploy);
        var upgradeDomains = Number(7, "upgradeDomains", 1, 20, required: false);
        var constraints = new Dictionary<string, string>(StringComparer.Ordinal);
        if (cells.Length == 9 && Text(8).Length > 0)
        {
            foreach (var pair in Text(8).Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=');
                if (eq <= 0)
                {
                    Error(8, $"constraint '{pair}' is not key=value");
                    continue;
                }

                constraints[pair[..eq].Trim()] = pair[(eq + 1)..].Trim();
            }
        }

        if (diagnostics.Items.Count != errors)
        {
            return null;
        }

        return new TraceOp(kind.Value, Text(1), Text(2), role, instances, cpus, memory, upgradeDomains == 0 ? 5 : upgradeDomains, constraints, lineNumber);
    }

    private static bool CheckTarget(TraceOp op, HashSet<(string, string, string)> deployed, string file, DiagnosticBag diagnostics)
    {
        var at = new SourceLocation(file, op.Line, 1);
        switch (op.Kind)
        {
            case TraceOpKind.Deploy when !deployed.Add((op.Tenant, op.Service, op.Role!)):
                diagnostics.Add(at, DiagnosticCodes.TraceUnknownTarget, $"{op.Tenant}/{op.Service}/{op.Role} is already deployed; use scale to change its count");
                return false;
            case TraceOpKind.Scale when !deployed.Contains((op.Tenant, op.Service, op.Role!)):
                diagnostics.Add(at, DiagnosticCodes.TraceUnknownTarget, $"{op.Tenant}/{op.Service}/{op.Role} is not deployed; deploy it before scaling it");
                return false;
            case TraceOpKind.Delete:
                var removed = deployed.RemoveWhere(d => d.Item1 == op.Tenant && d.Item2 == op.Service && (op.Role is null || d.Item3 == op.Role));
                if (removed == 0)
                {
                    diagnostics.Add(at, DiagnosticCodes.TraceUnknownTarget, $"{op.Tenant}/{op.Service}{(op.Role is null ? string.Empty : "/" + op.Role)} is not deployed");
                    return false;
                }

                return true;
            default:
                return true;
        }
    }

    private static int ColumnOf(string[] cells, int cell) => cells.Take(cell).Sum(c => c.Length + 1) + 1;
}
