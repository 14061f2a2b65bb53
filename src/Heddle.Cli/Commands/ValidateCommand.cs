using System.CommandLine;
using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;
using Heddle.Packaging;

namespace Heddle.Cli.Commands;

/// <summary><c>heddle validate &lt;dir|file.hpkg&gt; [--config file]</c>: every problem at once, exit 1 if any.</summary>
internal static class ValidateCommand
{
    public static Command Create(CliConsole console)
    {
        var target = new Argument<string>("package") { Description = "A service folder (with service.yaml) or a .hpkg package" };
        var config = new Option<string?>("--config", "-c")
        {
            Description = "The model configuration to check against the definition (default: <service>.config.yaml in the folder, if present)",
        };
        var format = CommonOptions.Format();
        var command = new Command("validate", "Check a service definition, package and model configuration") { target, config, format };
        command.SetAction(parse => Run(console, parse.GetValue(target)!, parse.GetValue(config), parse.GetValue(format)!));
        return command;
    }

    private static int Run(CliConsole console, string target, string? configPath, string format)
    {
        if (configPath is not null)
        {
            CommonOptions.ReadSmallText(configPath, "configuration"); // refused past 1 MiB (or endless, as /dev/zero) before the parser reads it
        }

        var diagnostics = new DiagnosticBag();
        var definition = ReadDefinition(target, diagnostics);
        if (configPath is null && Directory.Exists(target) && definition is { Name.Length: > 0 })
        {
            var beside = Path.Combine(target, ModelConfigurationParser.FileNameFor(definition.Name));
            configPath = File.Exists(beside) ? beside : null;
        }

        if (configPath is not null)
        {
            ServiceDirectory.ReadAndCheckConfiguration(definition, configPath, diagnostics);
        }

        if (format == "json")
        {
            console.WriteJson(new
            {
                valid = !diagnostics.HasErrors,
                service = definition?.Name,
                configuration = configPath,
                diagnostics = diagnostics.Sorted().Select(CliConsole.ToJson),
            });
        }
        else
        {
            console.WriteDiagnostics(diagnostics);
            var checkedWhat = configPath is null ? target : $"{target} with {configPath}";
            console.Out.WriteLine(diagnostics.HasErrors
                ? $"{checkedWhat}: {diagnostics.Items.Count} error(s)"
                : $"{checkedWhat}: valid (service '{definition!.Name}', {definition.Roles.Count} role(s))");
        }

        return diagnostics.HasErrors ? ExitCodes.Invalid : ExitCodes.Ok;
    }

    private static ServiceDefinition? ReadDefinition(string target, DiagnosticBag diagnostics)
    {
        if (Directory.Exists(target))
        {
            return ServiceDirectory.ReadDefinition(target, diagnostics);
        }

        CommonOptions.RequireExistingFile(target, "package");
        using var stream = File.OpenRead(target);
        using var package = PackageArchive.Open(stream, Path.GetFileName(target), PackageLimits.Default, diagnostics);
        return package is not null && package.VerifyContent(diagnostics) ? package.Definition : null;
    }
}
