using Heddle.Model.Diagnostics;
using Heddle.Packaging;

namespace Heddle.Testing;

/// <summary>Small packages built on the fly from a service.yaml (each role gets an empty folder).</summary>
public static class TestPackages
{
    public static string Build(TempDirectory work, string name, string serviceYaml)
    {
        var source = work.Combine($"{name}-src");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "service.yaml"), serviceYaml);
        var diagnostics = new DiagnosticBag();
        var definition = ServiceDirectory.ReadDefinition(source, diagnostics) ?? throw new InvalidOperationException(string.Join("; ", diagnostics.Items));
        foreach (var role in definition.Roles)
        {
            Directory.CreateDirectory(Path.Combine(source, "roles", role.Name));
        }

        var output = work.Combine($"{name}.hpkg");
        return PackageBuilder.Pack(source, output, diagnostics) is null ? throw new InvalidOperationException(string.Join("; ", diagnostics.Items)) : output;
    }
}
