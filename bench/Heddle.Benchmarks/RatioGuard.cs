using System.Globalization;

namespace Heddle.Benchmarks;

/// <summary>
/// `--guard R`: the harness fails (exit code 3) when any of its headline ratios (Heddle's figure over the reference's,
/// from the same run) is below R. Ratios only, never absolute times, so a slow machine does not fail it; CI runs the
/// data-plane harnesses so (tests/Heddle.EndToEnd.Tests/Guard).
/// </summary>
internal sealed class RatioGuard
{
    public const int BelowExitCode = 3;

    private readonly double? _minimum;
    private readonly List<(string Name, double Ratio)> _ratios = [];

    public RatioGuard(string[] args)
    {
        var at = Array.IndexOf(args, "--guard");
        if (at >= 0)
        {
            if (at + 1 >= args.Length || !double.TryParse(args[at + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out var minimum) || minimum <= 0)
            {
                throw new ArgumentException("--guard needs a ratio above 0, such as 0.9");
            }

            _minimum = minimum;
        }
    }

    /// <summary>Whether --guard was given: a harness may leave out what is printed for information only.</summary>
    public bool Active => _minimum is not null;

    /// <summary>Notes one headline ratio: Heddle's figure over the reference's (higher is better).</summary>
    public void Add(string name, double ratio) => _ratios.Add((name, ratio));

    /// <summary>0, or <see cref="BelowExitCode"/> after naming every ratio below the minimum; says nothing without --guard.</summary>
    public int Verdict()
    {
        if (_minimum is not { } minimum)
        {
            return 0;
        }

        var below = _ratios.Where(r => double.IsNaN(r.Ratio) || r.Ratio < minimum).ToList();
        Console.WriteLine();
        Console.WriteLine(below.Count == 0
            ? string.Create(CultureInfo.InvariantCulture, $"guard: every ratio at or above {minimum:0.00}x ({string.Join(", ", _ratios.Select(r => $"{r.Name} {r.Ratio:0.00}x"))})")
            : string.Create(CultureInfo.InvariantCulture, $"guard: below {minimum:0.00}x: {string.Join(", ", below.Select(r => $"{r.Name} {r.Ratio:0.00}x"))}"));
        return below.Count == 0 ? 0 : BelowExitCode;
    }
}
