using System.Globalization;

namespace Heddle.Benchmarks;

/// <summary>A harness's options when each is a number: <c>--nodes 10000 --rounds 20</c>.</summary>
internal static class NumberOptions
{
    public static Dictionary<string, int> Parse(string[] args)
    {
        var options = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length || !args[i].StartsWith("--", StringComparison.Ordinal) || !int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var value))
            {
                throw new ArgumentException($"expected --name number, got '{string.Join(' ', args.Skip(i).Take(2))}'");
            }

            options[args[i][2..]] = value;
        }

        return options;
    }
}
