using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;

namespace Heddle.Packaging;

/// <summary>The outcome of a successful pack.</summary>
public sealed record PackResult(ServiceDefinition Definition, PackageManifest Manifest, string PackageHash, long PackageBytes);

/// <summary>Validates a service folder and writes its package atomically: the output appears whole or not at all.</summary>
public static class PackageBuilder
{
    public static PackResult? Pack(string directory, string outputPath, DiagnosticBag diagnostics)
    {
        var definition = ServiceDirectory.ReadDefinition(directory, diagnostics);
        if (definition is null || diagnostics.HasErrors)
        {
            return null;
        }

        var files = ServiceDirectory.CollectFiles(directory, definition, diagnostics);
        if (diagnostics.HasErrors)
        {
            return null;
        }

        var fullOutput = Path.GetFullPath(outputPath);
        Directory.CreateDirectory(Path.GetDirectoryName(fullOutput)!);
        var temporary = $"{fullOutput}.{Guid.NewGuid():N}.tmp";
        try
        {
            PackageManifest manifest;
            using (var output = new FileStream(temporary, FileMode.CreateNew, FileAccess.ReadWrite))
            {
                manifest = PackageWriter.Write(definition.Name, files, output);
                output.Flush(flushToDisk: true);
            }

            string hash;
            long size;
            using (var written = File.OpenRead(temporary))
            {
                size = written.Length;
                hash = Sha256Hex.Of(written);
            }

            File.Move(temporary, fullOutput, overwrite: true);
            return new PackResult(definition, manifest, hash, size);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
