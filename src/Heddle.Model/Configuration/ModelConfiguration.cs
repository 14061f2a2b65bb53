using Heddle.Model.Diagnostics;

namespace Heddle.Model.Configuration;

/// <summary>The content of &lt;service&gt;.config.yaml: what may change while the service runs.</summary>
public sealed record ModelConfiguration
{
    public const int MinInstances = 1;
    public const int MaxInstances = 1000;

    public required string Service { get; init; }

    /// <summary>Overrides the definition's upgrade domain count when set.</summary>
    public int? UpgradeDomains { get; init; }

    public required IReadOnlyList<RoleConfiguration> Roles { get; init; }

    /// <summary>How changes are walked through the upgrade domains (the <c>upgrade:</c> block, or its defaults).</summary>
    public UpgradePolicy Upgrade { get; init; } = UpgradePolicy.Default;

    /// <summary>The role of that name, or null. A loop, not LINQ: placement asks it for each instance of each pass.</summary>
    public RoleConfiguration? FindRole(string name)
    {
        for (var i = 0; i < Roles.Count; i++)
        {
            if (Roles[i].Name == name)
            {
                return Roles[i];
            }
        }

        return null;
    }
}

public sealed record RoleConfiguration
{
    public required string Name { get; init; }

    public required int Instances { get; init; }

    public IReadOnlyList<SettingValue> Settings { get; init; } = [];

    public SourceLocation Location { get; init; }
}

public sealed record SettingValue(string Name, string Value, SourceLocation Location);
