namespace Heddle.Model.Configuration;

/// <summary>How an upgrade walks the upgrade domains: the configuration's <c>upgrade:</c> block, with its defaults.</summary>
public sealed record UpgradePolicy
{
    public static readonly UpgradePolicy Default = new();

    /// <summary>auto walks on by itself; manual waits for `heddle upgrade resume` after each domain.</summary>
    public UpgradeMode Mode { get; init; } = UpgradeMode.Auto;

    /// <summary>Every upgraded instance Ready, and staying Ready this long, before the next domain.</summary>
    public TimeSpan HealthCheckStable { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A domain not healthy this long after its instances were restarted has failed.</summary>
    public TimeSpan UpgradeDomainTimeout { get; init; } = TimeSpan.FromMinutes(5);

    public UpgradeFailureAction FailureAction { get; init; } = UpgradeFailureAction.Rollback;
}

public enum UpgradeMode
{
    Auto,
    Manual,
}

public enum UpgradeFailureAction
{
    Rollback,
    Pause,
}
