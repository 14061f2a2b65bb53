using System.Globalization;

namespace Heddle.Placement;

/// <summary>
/// Why nothing fits, in counts per rule, like Nomad's "7 nodes: not enough free cores". Each node is counted
/// once, under the first rule it fails in the order the rules are checked.
/// </summary>
public sealed record Explanation(int Nodes, IReadOnlyList<KeyValuePair<string, int>> Reasons)
{
    public override string ToString()
    {
        var parts = Reasons.Where(r => r.Value > 0).Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Value:N0} {r.Key}"));
        var nodes = string.Create(CultureInfo.InvariantCulture, $"{Nodes:N0} node{(Nodes == 1 ? string.Empty : "s")}");
        return Nodes == 0 ? "the cluster has no nodes" : $"{nodes}: {string.Join(", ", parts)}";
    }
}
