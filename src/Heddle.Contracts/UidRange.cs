using System.Globalization;

namespace Heddle.Contracts;

/// <summary>
/// A range of uids (and gids of the same numbers) for services' instances: the controller gives each service one of
/// them for the whole cluster; an agent runs an instance only as a uid of its own range. Never below 1000, where a
/// system's own users live.
/// </summary>
public sealed record UidRange(int First, int Last)
{
    public static UidRange Default { get; } = new(200000, 265535);

    public int Count => Last - First + 1;

    public bool Contains(int uid) => uid >= First && uid <= Last;

    /// <summary>Reads "200000-265535"; null (with the reason) for anything else.</summary>
    public static UidRange? Parse(string text, out string? problem)
    {
        var parts = text.Split('-');
        if (parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var first)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var last)
            && first >= 1000 && last >= first && last < int.MaxValue)
        {
            problem = null;
            return new UidRange(first, last);
        }

        problem = $"'{text}' is not a uid range like 200000-265535 above the system's own uids (1000 or more)";
        return null;
    }

    public override string ToString() => $"{First}-{Last}";
}
