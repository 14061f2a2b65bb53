using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;
using Heddle.Model.Validation;

namespace Heddle.Packaging;

/// <summary>
/// A service's source folder as a user lays it out: service.yaml at the root and one folder per role under
/// roles/ (the same layout the package has). Reads the definition and lists the files a package takes.
/// </summary>
public static class ServiceDirectory
{
    public static ServiceDefinition? ReadDefinition(string directory, DiagnosticBag diagnostics)
    {
        var path = Path.Combine(directory, PackageLayout.ServiceFile);
        if (!File.Exists(path))
        {
            diagnostics.Add(SourceLocation.WholeFile(path), DiagnosticCodes.MissingPackageFile, $"there is no {PackageLayout.ServiceFile} in '{directory}'");
            return null;
        }

        using var reader = File.OpenText(path);
        return ServiceDefinitionParser.Parse(reader, diagnostics, path);
    }

    public static ModelConfiguration? ReadConfiguration(string path, DiagnosticBag diagnostics)
    {
        using var reader = File.OpenText(path);
        return ModelConfigurationParser.Parse(reader, diagnostics, path);
    }

    /// <summary>Reads a configuration and checks it against the definition, reporting into the same bag.</summary>
    public static ModelConfiguration? ReadAndCheckConfiguration(ServiceDefinition? definition, string path, DiagnosticBag diagnostics)
    {
        var configuration = ReadConfiguration(path, diagnostics);
        if (definition is not null && configuration is not null)
        {
            ModelValidator.CheckConfiguration(definition, configuration, path, diagnostics);
        }

        return configuration;
    }

    /// <summary>The files of a package built from <paramref name="directory"/>: service.yaml and every file under each role's folder.</summary>
    public static IReadOnlyList<PackageSourceFile> CollectFiles(string directory, ServiceDefinition definition, DiagnosticBag diagnostics)
    {
        var files = new List<PackageSourceFile> { FileAt(Path.Combine(directory, PackageLayout.ServiceFile), PackageLayout.ServiceFile) };
        var rolesRoot = Path.Combine(directory, PackageLayout.RolesFolder);
        foreach (var role in definition.Roles)
        {
            var roleDirectory = Path.Combine(rolesRoot, role.Name);
            if (!Directory.Exists(roleDirectory))
            {
                diagnostics.Add(SourceLocation.WholeFile(roleDirectory), DiagnosticCodes.RoleFolderMissing,
                    $"role '{role.Name}' has no folder {PackageLayout.RolePrefix(role.Name)} in '{directory}'; build or copy the role's files there (an empty folder is allowed)");
                continue;
            }

            AddTree(roleDirectory, PackageLayout.RolePrefix(role.Name), files, diagnostics);
        }

        if (Directory.Exists(rolesRoot))
        {
            foreach (var folder in Directory.EnumerateFileSystemEntries(rolesRoot).Select(Path.GetFileName).Order(StringComparer.Ordinal))
            {
                if (definition.FindRole(folder!) is null)
                {
                    diagnostics.Add(SourceLocation.WholeFile(Path.Combine(rolesRoot, folder!)), DiagnosticCodes.UnknownRoleFolder,
                        $"'{PackageLayout.RolesFolder}/{folder}' is not a role of service '{definition.Name}'; remove it or declare the role in service.yaml");
                }
            }
        }

        return files;
    }

    private static void AddTree(string directory, string prefix, List<PackageSourceFile> files, DiagnosticBag diagnostics)
    {
        foreach (var info in new DirectoryInfo(directory).EnumerateFileSystemInfos().OrderBy(i => i.Name, StringComparer.Ordinal))
        {
            var packagePath = prefix + info.Name;
            if (info.LinkTarget is not null)
            {
                diagnostics.Add(SourceLocation.WholeFile(info.FullName), DiagnosticCodes.SymbolicLink,
                    $"'{packagePath}' is a symbolic link; packages hold only regular files, so copy the file it points to instead");
            }
            else if (info is DirectoryInfo)
            {
                AddTree(info.FullName, packagePath + "/", files, diagnostics);
            }
            else if (info is FileInfo file && (file.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) == 0)
            {
                files.Add(FileAt(file.FullName, packagePath));
            }
        }
    }

    private static PackageSourceFile FileAt(string fullPath, string packagePath)
    {
        var executable = (File.GetUnixFileMode(fullPath) & UnixFileMode.UserExecute) != 0;
        return new PackageSourceFile(packagePath, executable, () => File.OpenRead(fullPath));
    }
}
