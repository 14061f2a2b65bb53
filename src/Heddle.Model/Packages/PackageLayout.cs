namespace Heddle.Model.Packages;

/// <summary>Where things live inside a package, and the rule for entry paths that are safe to extract.</summary>
public static class PackageLayout
{
    public const string ServiceFile = "service.yaml";
    public const string RolesFolder = "roles";

    public static string RolePrefix(string role) => $"{RolesFolder}/{role}/";

    /// <summary>The role a path belongs to (<c>roles/web/app.dll</c> → <c>web</c>), or null.</summary>
    public static string? RoleOf(string path)
    {
        if (!path.StartsWith(RolesFolder + "/", StringComparison.Ordinal))
        {
            return null;
        }

        var rest = path.AsSpan(RolesFolder.Length + 1);
        var slash = rest.IndexOf('/');
        return slash <= 0 ? null : rest[..slash].ToString();
    }

    /// <summary>
    /// A relative, '/'-separated path with no empty, "." or ".." segment, no backslash, no drive and no NUL:
    /// one that cannot land outside the folder it is extracted into on any platform.
    /// </summary>
    public static bool IsSafeRelativePath(string path, out string reason)
    {
        if (path.Length == 0)
        {
            reason = "the path is empty";
            return false;
        }

        if (path[0] == '/' || path.Contains('\\') || (path.Length >= 2 && path[1] == ':'))
        {
            reason = "the path is absolute or uses '\\'";
            return false;
        }

        if (path.Contains('\0'))
        {
            reason = "the path contains a NUL character";
            return false;
        }

        var trimmed = path.EndsWith('/') ? path[..^1] : path;
        foreach (var segment in trimmed.Split('/'))
        {
            if (segment is "" or "." or "..")
            {
                reason = segment == ".." ? "the path climbs out with '..'" : "the path has an empty or '.' segment";
                return false;
            }
        }

        reason = string.Empty;
        return true;
    }
}
