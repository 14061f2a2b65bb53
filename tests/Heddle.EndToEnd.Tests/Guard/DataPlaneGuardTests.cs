using Heddle.Testing;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests.Guard;

/// <summary>
/// The data plane's regression guard: the benchmark harnesses (bench/Heddle.Benchmarks, built with the solution) run at
/// a small size and fail when Heddle's throughput falls below 0.9× the reference's in the same run (HAProxy for L4 and
/// L7, Knot for DNS) — ratios, never absolute times. A ratio below the line is measured again before the test
/// fails: a moment of noise on a shared machine does not fail it, a regression fails every run. scripts/test.sh runs
/// this category alone, last, on a machine with nothing else running.
/// </summary>
[Trait("Category", "Guard")]
public sealed class DataPlaneGuardTests(ITestOutputHelper output)
{
    private const string Minimum = "0.9";

    /// <summary>A ratio below the line is measured again, up to this many times in all: a regression fails every one.</summary>
    private const int Attempts = 3;

    [Fact]
    public void LoadBalancer_L4AndL7_AtLeastNineTenthsOfHaProxy() => Guard("lb", "--seconds", "1", "--rounds", "5");

    [Fact]
    public void Dns_FourClients_AtLeastNineTenthsOfKnot() => Guard("dns", "--seconds", "1", "--rounds", "5", "--clients", "4");

    [Fact]
    public void Dns_OneClient_AtLeastNineTenthsOfKnot() => Guard("dns", "--seconds", "1", "--rounds", "5", "--clients", "1");

    private void Guard(params string[] args)
    {
        var harness = Path.Combine(RepositoryRootAttribute.Value, "bench", "Heddle.Benchmarks", "bin", "Release", "net10.0", "Heddle.Benchmarks.dll");
        Assert.True(File.Exists(harness), $"{harness} is missing: build the solution in Release first");
        ProcessResult? run = null;
        for (var attempt = 1; attempt <= Attempts; attempt++)
        {
            run = ProcessRunner.Run("dotnet", [harness, .. args, "--guard", Minimum], TimeSpan.FromMinutes(5));
            output.WriteLine($"attempt {attempt}: {string.Join(' ', args)}\n{run.Stdout}{run.Stderr}");
            if (run.ExitCode != 3)
            {
                break; // passed, or failed for a reason other than a ratio: no second measurement
            }
        }

        Assert.True(run!.ExitCode == 0, $"bench {string.Join(' ', args)} --guard {Minimum} exited with {run.ExitCode}:\n{run.Stdout}{run.Stderr}");
    }
}
