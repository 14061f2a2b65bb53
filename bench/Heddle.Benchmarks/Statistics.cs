namespace Heddle.Benchmarks;

internal static class Statistics
{
    /// <summary>The middle value (the mean of the two middle ones for an even count): a round's figure that a noisy moment does not move.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
