using System.Globalization;

namespace Heddle.Contracts.Api;

/// <summary>
/// What one tenant's services may hold at once, over all their slots (PUT /v1/quotas/{tenant} takes it whole). Null
/// is no limit. Cores and disk count each instance's role size; a VIP is one per slot deployment with an input endpoint.
/// </summary>
public sealed record QuotaLimits(long? Cores = null, long? Instances = null, long? Vips = null, long? DiskMiB = null)
{
    /// <summary>The largest limit of any kind that can be set; beyond it, write none.</summary>
    public const long MaxLimit = 1L << 40;

    public static readonly QuotaLimits Unlimited = new();

    /// <summary>A new tenant's quota unless the controller's --default-quota says otherwise.</summary>
    public static readonly QuotaLimits NewTenantDefault = new(Cores: 64, Instances: 256, Vips: 16, DiskMiB: 262_144);

    /// <summary>The names a limit is written with, on the command line and in sentences.</summary>
    public static readonly IReadOnlyList<string> Names = ["cores", "instances", "vips", "disk-mib"];

    public long? this[string name] => name switch
    {
        "cores" => Cores,
        "instances" => Instances,
        "vips" => Vips,
        "disk-mib" => DiskMiB,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "not a quota name"),
    };

    /// <summary>A copy with the limit <paramref name="name"/> set (null: no limit).</summary>
    public QuotaLimits With(string name, long? value) => name switch
    {
        "cores" => this with { Cores = value },
        "instances" => this with { Instances = value },
        "vips" => this with { Vips = value },
        "disk-mib" => this with { DiskMiB = value },
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "not a quota name"),
    };

    /// <summary>Why these limits cannot be set, or null: each is none or 0..<see cref="MaxLimit"/>.</summary>
    public string? Error() => Names.FirstOrDefault(n => this[n] is < 0 or > MaxLimit) is { } bad
        ? $"{bad} {this[bad]} is outside 0..{MaxLimit} (write none for no limit)"
        : null;

    /// <summary>
    /// (Not named TryParse: ASP.NET would take it for the way to bind the record from a route or query string.)
    /// Reads <c>none</c> (no limit of any kind) or a comma-separated list such as <c>cores=64,vips=none</c>; a kind
    /// not named keeps its value in <paramref name="start"/>. False with a sentence when the text is not that.
    /// </summary>
    public static bool TryRead(string text, QuotaLimits start, out QuotaLimits limits, out string? error)
    {
        limits = start;
        error = null;
        if (text.Trim() is "none" or "unlimited")
        {
            limits = Unlimited;
            return true;
        }

        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var pair = part.Split('=', 2, StringSplitOptions.TrimEntries);
            if (pair.Length != 2 || !Names.Contains(pair[0]))
            {
                error = $"'{part}' is not NAME=N or NAME=none with NAME one of {string.Join(", ", Names)}";
                return false;
            }

            if (!TryParseLimit(pair[1], out var value))
            {
                error = $"{pair[0]}={pair[1]}: write a whole number from 0 to {MaxLimit}, or none";
                return false;
            }

            limits = limits.With(pair[0], value);
        }

        return true;
    }

    /// <summary>Reads one limit: a whole number from 0 to <see cref="MaxLimit"/>, or none (null).</summary>
    public static bool TryParseLimit(string text, out long? value)
    {
        value = null;
        if (text is "none" or "unlimited")
        {
            return true;
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number <= MaxLimit)
        {
            value = number;
            return true;
        }

        return false;
    }

    /// <summary>"cores=64,instances=256,vips=16,disk-mib=262144" (none for no limit), the form <see cref="TryRead"/> reads.</summary>
    public override string ToString() => this == Unlimited
        ? "none"
        : string.Join(",", Names.Select(n => $"{n}={this[n]?.ToString(CultureInfo.InvariantCulture) ?? "none"}"));
}

/// <summary>What a tenant's services hold now, in the quota's terms.</summary>
public sealed record QuotaUsage(long Cores, long Instances, long Vips, long DiskMiB)
{
    public static readonly QuotaUsage Zero = new(0, 0, 0, 0);

    public long this[string name] => name switch
    {
        "cores" => Cores,
        "instances" => Instances,
        "vips" => Vips,
        "disk-mib" => DiskMiB,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "not a quota name"),
    };

    public static QuotaUsage operator +(QuotaUsage a, QuotaUsage b) => new(a.Cores + b.Cores, a.Instances + b.Instances, a.Vips + b.Vips, a.DiskMiB + b.DiskMiB);

    public static QuotaUsage operator -(QuotaUsage a, QuotaUsage b) => new(a.Cores - b.Cores, a.Instances - b.Instances, a.Vips - b.Vips, a.DiskMiB - b.DiskMiB);
}

/// <summary>A tenant's quota as it applies now, where it comes from (<see cref="QuotaSources"/>), and what is in use.</summary>
public sealed record QuotaStatus(string Tenant, QuotaLimits Limits, string Source, QuotaUsage Used);

public static class QuotaSources
{
    /// <summary>An admin set it with `heddle quota set`.</summary>
    public const string Set = "set";

    /// <summary>The controller's --default-quota, as for every tenant nobody set one for.</summary>
    public const string Default = "default";

    /// <summary>The tenant an admin's deployments belong to: no limit unless one is set.</summary>
    public const string AdminTenant = "admin's tenant";
}
