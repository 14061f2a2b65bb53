namespace Heddle.Placement.Cluster;

/// <summary>Where a role's instances are: per fault domain, per (upgrade domain, fault domain), and each placement.</summary>
internal sealed class RoleState(int faultDomains)
{
    private readonly Dictionary<int, int[]> _byUpgradeDomain = [];

    public int[] PerFaultDomain { get; } = new int[faultDomains];

    public Dictionary<int, Placement> Placements { get; } = [];

    public int[] PerFaultDomainOf(int upgradeDomain)
    {
        if (!_byUpgradeDomain.TryGetValue(upgradeDomain, out var counts))
        {
            counts = new int[PerFaultDomain.Length];
            _byUpgradeDomain[upgradeDomain] = counts;
        }

        return counts;
    }

    public void Count(int faultDomain, int upgradeDomain, int delta)
    {
        PerFaultDomain[faultDomain] += delta;
        PerFaultDomainOf(upgradeDomain)[faultDomain] += delta;
    }
}
