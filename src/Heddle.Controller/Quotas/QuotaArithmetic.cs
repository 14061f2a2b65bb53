using System.Globalization;
using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Heddle.Model.Definition;

namespace Heddle.Controller.Quotas;

/// <summary>
/// What a deployment holds in a quota's terms, and whether a change fits: a pure function of the models and records
/// it is given. A deployment holds its desired instances (each counted with its role's cores and disk), placed or
/// not, and its VIP; one being deleted holds what it has left.
/// </summary>
public static class QuotaArithmetic
{
    /// <summary>What a deployment of <paramref name="definition"/> and <paramref name="configuration"/> holds, with a VIP or not.</summary>
    public static QuotaUsage Of(ServiceDefinition definition, Heddle.Model.Configuration.ModelConfiguration configuration, bool vip)
    {
        long cores = 0, instances = 0, disk = 0;
        foreach (var role in configuration.Roles)
        {
            var size = definition.FindRole(role.Name)?.Size ?? RoleSize.Default;
            instances += role.Instances;
            cores += (long)size.Cores * role.Instances;
            disk += (long)size.DiskMiB * role.Instances;
        }

        return new QuotaUsage(cores, instances, vip ? 1 : 0, disk);
    }

    /// <summary>What placed instances hold (a deployment being deleted, or one whose model cannot be read): their cores, and the disk of their role's size.</summary>
    public static QuotaUsage Of(IEnumerable<InstanceRecord> instances, ServiceDefinition? definition, bool vip)
    {
        long cores = 0, count = 0, disk = 0;
        foreach (var instance in instances)
        {
            count++;
            cores += instance.Cpus.Count;
            disk += definition?.FindRole(instance.Role)?.Size.DiskMiB ?? RoleSize.DefaultDiskMiB;
        }

        return new QuotaUsage(cores, count, vip ? 1 : 0, disk);
    }

    /// <summary>
    /// Why a change is refused, or null when it fits: a kind of limit is exceeded when the tenant would hold more than
    /// the limit after the change and more than before it (a change that gives back, or keeps, what a tenant over a
    /// lowered quota holds, is let through).
    /// </summary>
    /// <param name="inUse">What the tenant holds now, over every deployment.</param>
    /// <param name="after">What it would hold once the change is accepted.</param>
    /// <param name="action">What the change is, for the sentence: "deploy", "scale", "rollback".</param>
    public static string? Refusal(string tenant, QuotaLimits limits, QuotaUsage inUse, QuotaUsage after, string action)
    {
        var exceeded = QuotaLimits.Names
            .Where(n => limits[n] is { } limit && after[n] > limit && after[n] > inUse[n])
            .Select(n => Exceeded(n, limits[n]!.Value, inUse[n], after[n] - inUse[n], action))
            .ToList();
        if (exceeded.Count == 0)
        {
            return null;
        }

        return $"tenant {tenant}'s quota allows {string.Join("; and it allows ", exceeded)}; nothing was changed "
            + $"(see 'heddle quota show {tenant}'; an admin can raise it with 'heddle quota set {tenant}')";
    }

    /// <summary>"8 cores; 6 are in use and this deploy needs 4 more".</summary>
    private static string Exceeded(string name, long limit, long inUse, long more, string action)
    {
        var noun = name switch
        {
            "cores" => limit == 1 ? "core" : "cores",
            "instances" => limit == 1 ? "instance" : "instances",
            "vips" => limit == 1 ? "VIP" : "VIPs",
            _ => "of disk",
        };
        return $"{Number(name, limit)} {noun}; {Number(name, inUse)} {(inUse == 1 && name != "disk-mib" ? "is" : "are")} in use and this {action} needs {Number(name, more)} more";
    }

    private static string Number(string name, long n) => n.ToString("N0", CultureInfo.InvariantCulture) + (name == "disk-mib" ? " MiB" : string.Empty);
}
