using Heddle.Placement.Cluster;

namespace Heddle.Placement.Ranking;

/// <summary>
/// The soft spreading rules, as the choice of a fault domain for each instance of a request.
/// <para>
/// Fault-domain spread: an instance goes to a FD holding the fewest instances of the role, so counts differ by at
/// most one. The FDs at that minimum form a <em>round</em>, filled by the next instances of the request, one each.
/// </para>
/// <para>
/// Upgrade-domain spread: within a round, instances are matched to FDs so that each lands where its upgrade domain
/// is least present. Choosing one instance at a time can corner the last one of a round into a FD that holds only
/// its UD (updating that UD would then empty the FD), so the round is planned as a small assignment: the most
/// constrained instance first, each to the eligible FD the others need least, ties to the FD with most free cores.
/// </para>
/// A planned FD that turns out to have no feasible node is ruled out and the rest of the round is planned again.
/// </summary>
internal sealed class FaultDomainSpread(ClusterState state, RoleState role, IReadOnlyList<InstanceSlot> slots)
{
    private readonly Dictionary<int, int> _planned = [];
    private int _position = -1;

    /// <summary>Moves on to the next instance of the request (slots are taken in the order given).</summary>
    public void Next() => _position++;

    /// <returns>The fault domain for the current instance among those not ruled out, or -1 when none is left.</returns>
    public int Choose(bool[] ruledOut)
    {
        if (_planned.TryGetValue(_position, out var planned) && !ruledOut[planned] && role.PerFaultDomain[planned] == MinCount(ruledOut))
        {
            return planned;
        }

        var round = Round(ruledOut);
        if (round.Count == 0)
        {
            return -1;
        }

        var members = Math.Min(round.Count, slots.Count - _position);
        if (members == 1)
        {
            return Best(round, slots[_position].UpgradeDomain);
        }

        Plan(round, members);
        return _planned[_position];
    }

    private int MinCount(bool[] ruledOut)
    {
        var min = int.MaxValue;
        for (var fd = 0; fd < ruledOut.Length; fd++)
        {
            if (!ruledOut[fd])
            {
                min = Math.Min(min, role.PerFaultDomain[fd]);
            }
        }

        return min;
    }

    /// <summary>The fault domains not ruled out that hold the fewest instances of the role.</summary>
    private List<int> Round(bool[] ruledOut)
    {
        var min = MinCount(ruledOut);
        var round = new List<int>();
        for (var fd = 0; fd < ruledOut.Length; fd++)
        {
            if (!ruledOut[fd] && role.PerFaultDomain[fd] == min)
            {
                round.Add(fd);
            }
        }

        return round;
    }

    /// <summary>For a single instance: the FD with the fewest of its upgrade domain, then the most free whole cores.</summary>
    private int Best(List<int> faultDomains, int upgradeDomain)
    {
        var counts = role.PerFaultDomainOf(upgradeDomain);
        var best = faultDomains[0];
        foreach (var fd in faultDomains)
        {
            if (counts[fd] < counts[best] || counts[fd] == counts[best] && state.FreeWholeCoresIn(fd) > state.FreeWholeCoresIn(best))
            {
                best = fd;
            }
        }

        return best;
    }

    /// <summary>Assigns the next <paramref name="members"/> instances one FD each from <paramref name="round"/>.</summary>
    private void Plan(List<int> round, int members)
    {
        // good[i]: the round's FDs where instance i's upgrade domain is least present (all FDs are equal for count).
        var good = new List<int>[members];
        for (var i = 0; i < members; i++)
        {
            var counts = role.PerFaultDomainOf(slots[_position + i].UpgradeDomain);
            var least = round.Min(fd => counts[fd]);
            good[i] = round.Where(fd => counts[fd] == least).ToList();
        }

        var free = new HashSet<int>(round);
        var open = Enumerable.Range(0, members).ToList();
        while (open.Count > 0)
        {
            // The most constrained instance first: the one with the fewest good FDs still free.
            var pick = open.MinBy(i => (good[i].Count(free.Contains), i));
            var choices = good[pick].Where(free.Contains).ToList();
            if (choices.Count == 0)
            {
                choices = [Best([.. free], slots[_position + pick].UpgradeDomain)];
            }

            // The FD the other open instances need least; then the one with the most free whole cores.
            var fd = choices
                .OrderBy(c => open.Count(i => i != pick && good[i].Contains(c)))
                .ThenByDescending(state.FreeWholeCoresIn)
                .ThenBy(c => c)
                .First();
            _planned[_position + pick] = fd;
            free.Remove(fd);
            open.Remove(pick);
        }
    }
}
