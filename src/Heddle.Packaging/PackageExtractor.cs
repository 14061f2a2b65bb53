using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;

namespace Heddle.Packaging;

/// <summary>
/// Unpacks a checked package into a folder. It writes only below a temporary sibling of the target and
/// renames it into place at the end, so a failure (hostile content, full disk, crash) leaves no partial tree
/// at the target, and the target either holds the whole verified package or does not exist.
/// </summary>
public static class PackageExtractor
{
    public static bool Extract(PackageArchive package, string targetDirectory, DiagnosticBag diagnostics)
    {
        var target = Path.GetFullPath(targetDirectory);
        if (Directory.Exists(target) || File.Exists(target))
        {
            diagnostics.Add(SourceLocation.WholeFile(target), DiagnosticCodes.TargetExists, $"'{target}' already exists; extract into a new folder");
            return false;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var staging = $"{target}.{Guid.NewGuid():N}.partial";
        var root = Path.GetFullPath(staging) + Path.DirectorySeparatorChar;
        try
        {
            Directory.CreateDirectory(staging);
            foreach (var role in package.Definition.Roles)
            {
                Directory.CreateDirectory(Path.Combine(staging, PackageLayout.RolesFolder, role.Name));
            }

            foreach (var file in package.Manifest.Files)
            {
                var destination = Path.GetFullPath(Path.Combine(staging, file.Path));
                if (!destination.StartsWith(root, StringComparison.Ordinal))
                {
                    // PackageArchive.Open already refuses such paths; this is the last line of defence.
                    diagnostics.Add(SourceLocation.WholeFile(file.Path), DiagnosticCodes.UnsafePath, $"entry '{file.Path}' would land outside the target");
                    return false;
                }

                Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
                using (var output = new FileStream(destination, FileMode.CreateNew, FileAccess.Write))
                {
                    if (!package.CopyFile(file, output, diagnostics))
                    {
                        return false;
                    }
                }

                File.SetUnixFileMode(destination, file.Executable ? ExecutableMode : PlainMode);
            }

            Directory.Move(staging, target);
            return true;
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }

    private const UnixFileMode PlainMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode ExecutableMode = PlainMode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
}
