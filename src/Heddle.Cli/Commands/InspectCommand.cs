using System.CommandLine;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;

namespace Heddle.Cli.Commands;

/// <summary><c>heddle inspect &lt;file.hpkg&gt; [-o json]</c>: what a package holds.</summary>
internal static class InspectCommand
{
    public static Command Create(CliConsole console)
    {
        var file = new Argument<string>("package") { Description = "A .hpkg package" };
        var format = CommonOptions.Format();
        var command = new Command("inspect", "Show a package's service, roles, sizes, endpoints, files and hash") { file, format };
        command.SetAction(parse => Run(console, parse.GetValue(file)!, parse.GetValue(format)!));
        return command;
    }

    private static int Run(CliConsole console, string path, string format)
    {
        CommonOptions.RequireExistingFile(path, "package");
        var diagnostics = new DiagnosticBag();
        using var stream = File.OpenRead(path);
        // Read as a package (bounded by its limits) before hashing: a device such as /dev/zero is refused at once
        // instead of being hashed forever.
        using var package = PackageArchive.Open(stream, Path.GetFileName(path), PackageLimits.Default, diagnostics);
        if (package is null || !package.VerifyContent(diagnostics))
        {
            console.WriteDiagnostics(diagnostics);
            console.Error.WriteLine($"{path}: not a valid package, {diagnostics.Items.Count} error(s)");
            return ExitCodes.Invalid;
        }

        stream.Position = 0;
        var hash = Sha256Hex.Of(stream);

        var definition = package.Definition;
        var manifest = package.Manifest;
        if (format == "json")
        {
            console.WriteJson(new
            {
                service = definition.Name,
                upgradeDomains = definition.UpgradeDomains,
                sha256 = hash,
                packageBytes = stream.Length,
                files = manifest.Files.Count,
                unpackedBytes = manifest.TotalBytes,
                roles = definition.Roles.Select(r => new
                {
                    name = r.Name,
                    driver = r.Driver,
                    image = r.Image,
                    size = new { name = r.Size.Name, cores = r.Size.Cores, memoryMiB = r.Size.MemoryMiB },
                    entryPoint = r.EntryPoint,
                    endpoints = r.Endpoints,
                    probe = r.Probe,
                    settings = r.Settings.Select(s => s.Name),
                    files = manifest.Files.Count(f => PackageLayout.RoleOf(f.Path) == r.Name),
                }),
            });
            return ExitCodes.Ok;
        }

        var o = console.Out;
        o.WriteLine($"service         {definition.Name}");
        o.WriteLine($"upgrade domains {definition.UpgradeDomains}");
        o.WriteLine($"sha256          {hash}");
        o.WriteLine($"files           {manifest.Files.Count}, {CommonOptions.FormatBytes(manifest.TotalBytes)} unpacked, {CommonOptions.FormatBytes(stream.Length)} packed");
        foreach (var role in definition.Roles)
        {
            o.WriteLine();
            o.WriteLine($"role {role.Name}");
            o.WriteLine($"  driver       {role.Driver.ToString().ToLowerInvariant()}{(role.Image is null ? string.Empty : $" (image {role.Image})")}");
            o.WriteLine($"  size         {role.Size}");
            o.WriteLine($"  entry point  {string.Join(' ', [role.EntryPoint.Command, .. role.EntryPoint.Args])}");
            foreach (var endpoint in role.Endpoints)
            {
                var port = endpoint.Port is { } p ? $" port {p}" : string.Empty;
                o.WriteLine($"  endpoint     {endpoint.Name}: {endpoint.Kind.ToString().ToLowerInvariant()} {endpoint.Protocol.ToString().ToLowerInvariant()}{port}");
            }

            o.WriteLine($"  probe        {DescribeProbe(role)}");
            if (role.Settings.Count > 0)
            {
                o.WriteLine($"  settings     {string.Join(", ", role.Settings.Select(s => s.Name))}");
            }

            o.WriteLine($"  files        {manifest.Files.Count(f => PackageLayout.RoleOf(f.Path) == role.Name)}");
        }

        return ExitCodes.Ok;
    }

    private static string DescribeProbe(RoleDefinition role) => role.Probe switch
    {
        { Kind: ProbeKind.Http } p => $"http {p.Endpoint} {p.Path} every {p.IntervalSeconds}s, timeout {p.TimeoutSeconds}s, unhealthy after {p.UnhealthyThreshold}",
        { } p => $"tcp {p.Endpoint} every {p.IntervalSeconds}s, timeout {p.TimeoutSeconds}s, unhealthy after {p.UnhealthyThreshold}",
        null when role.Endpoints.Count > 0 => $"default: Ready when endpoint '{role.Endpoints[0].Name}' accepts a TCP connection",
        null => "default: Ready when running",
    };
}
