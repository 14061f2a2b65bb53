using System.Reflection;

namespace Heddle.Testing;

/// <summary>The repository root, baked in at build time, so tests can find samples/ wherever they run from.</summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class RepositoryRootAttribute(string path) : Attribute
{
    public string Path { get; } = path;

    public static string Value => typeof(RepositoryRootAttribute).Assembly.GetCustomAttribute<RepositoryRootAttribute>()!.Path;
}
