using System.CommandLine;
using Heddle.Model.Diagnostics;
using Heddle.Packaging;

namespace Heddle.Cli.Commands;

/// <summary><c>heddle pack &lt;dir&gt; -o &lt;file.hpkg&gt;</c>: validate, then write a reproducible package and print its hash.</summary>
internal static class PackCommand
{
    public static Command Create(CliConsole console)
    {
        var directory = new Argument<string>("folder") { Description = "The service folder: service.yaml and roles/<role>/ for each role" };
        var output = new Option<string?>("--output", "-o") { Description = "The package file to write (default: <service>.hpkg in the current folder)" };
        var command = new Command("pack", "Build a service package (.hpkg) from a service folder") { directory, output };
        command.SetAction(parse => Run(console, parse.GetValue(directory)!, parse.GetValue(output)));
        return command;
    }

    private static int Run(CliConsole console, string directory, string? output)
    {
        if (!Directory.Exists(directory))
        {
            throw new UsageException($"folder '{directory}' does not exist");
        }

        var diagnostics = new DiagnosticBag();
        var definition = ServiceDirectory.ReadDefinition(directory, diagnostics);
        var outputPath = output ?? $"{(definition?.Name is { Length: > 0 } name ? name : "service")}.hpkg";
        var result = diagnostics.HasErrors ? null : PackageBuilder.Pack(directory, outputPath, diagnostics);
        if (result is null)
        {
            console.WriteDiagnostics(diagnostics);
            console.Error.WriteLine($"{directory}: not packed, {diagnostics.Items.Count} error(s)");
            return ExitCodes.Invalid;
        }

        console.Out.WriteLine(
            $"packed {outputPath}: service '{result.Definition.Name}', {result.Definition.Roles.Count} role(s), {result.Manifest.Files.Count} files, " +
            $"{CommonOptions.FormatBytes(result.Manifest.TotalBytes)} unpacked, {CommonOptions.FormatBytes(result.PackageBytes)} packed");
        console.Out.WriteLine($"sha256 {result.PackageHash}");
        return ExitCodes.Ok;
    }
}
