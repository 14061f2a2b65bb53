using System.Diagnostics;
using System.Text;
using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;
using Heddle.Model.Tests.Definition;
using Heddle.Model.Tests.Packages;
using Heddle.Model.Validation;

namespace Heddle.Model.Tests;

/// <summary>
/// Seeded mutation fuzzing, bounded in time: mutated service.yaml and configuration text through the parsers and the
/// validator, mutated package bytes through the package reader. The property: a diagnostic (or a clean parse), never
/// an exception. A failure names the seed and the iteration; HEDDLE_FUZZ_SEED replays it.
/// </summary>
public sealed class FuzzTests
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(4);
    private static readonly byte[] YamlBytes = "{}[]:,-'\"&*!|>#%@`?\n\t 0123456789abcxyz~"u8.ToArray();

    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("HEDDLE_FUZZ_SEED"), out var seed) ? seed : 20261201;

    internal static byte[] Mutate(Random random, byte[] input)
    {
        var bytes = new List<byte>(input);
        var edits = 1 + random.Next(6);
        for (var e = 0; e < edits && bytes.Count > 0; e++)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(6))
            {
                case 0:
                    bytes[at] = YamlBytes[random.Next(YamlBytes.Length)];
                    break;
                case 1:
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, 1 + random.Next(16)));
                    break;
                case 2:
                    bytes.Insert(at, YamlBytes[random.Next(YamlBytes.Length)]);
                    break;
                case 3:
                    var length = Math.Min(bytes.Count - at, 1 + random.Next(40));
                    bytes.InsertRange(random.Next(bytes.Count), bytes.GetRange(at, length));
                    break;
                case 4:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                default:
                    bytes[at] = (byte)random.Next(256);
                    break;
            }
        }

        return [.. bytes];
    }

    private static void Run(string what, Action<Random, int> iteration)
    {
        var random = new Random(Seed);
        var clock = Stopwatch.StartNew();
        var i = 0;
        for (; clock.Elapsed < Budget; i++)
        {
            try
            {
                iteration(random, i);
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"{what}: iteration {i} of seed {Seed} threw {e.GetType().Name}: {e.Message}\n{e}");
            }
        }

        Assert.True(i > 100, $"{what}: only {i} iterations in {Budget.TotalSeconds} s");
    }

    [Fact]
    public void MutatedServiceAndConfigurationText_GiveDiagnostics_NeverAnException()
    {
        var service = Encoding.UTF8.GetBytes(ModelText.ValidService);
        var config = Encoding.UTF8.GetBytes(ModelText.ValidConfig);
        Run("service.yaml + configuration", (random, _) =>
        {
            var bag = new DiagnosticBag();
            var definition = ServiceDefinitionParser.Parse(Encoding.UTF8.GetString(Mutate(random, service)), bag);
            var configuration = ModelConfigurationParser.Parse(Encoding.UTF8.GetString(Mutate(random, config)), bag, "hello.config.yaml");
            if (definition is not null && configuration is not null)
            {
                ModelValidator.CheckConfiguration(definition, configuration, "hello.config.yaml", bag);
            }

            Assert.True(definition is not null || bag.HasErrors, "a definition that could not be read came without an error");
        });
    }

    [Fact]
    public void MutatedPackageBytes_AreRefusedWithDiagnostics_NeverAnException()
    {
        var package = TestPackages.Valid();
        Run("package", (random, _) =>
        {
            var bag = new DiagnosticBag();
            var bytes = random.Next(3) == 0 ? Mutate(random, package) : FlipSome(random, package);
            using var archive = PackageArchive.Open(new MemoryStream(bytes), "fuzzed.hpkg", PackageLimits.Default, bag);
            if (archive is not null)
            {
                archive.VerifyContent(bag);
            }
            else
            {
                Assert.True(bag.HasErrors);
            }
        });
    }

    private static byte[] FlipSome(Random random, byte[] input)
    {
        var bytes = (byte[])input.Clone();
        for (var i = 0; i < 1 + random.Next(4); i++)
        {
            bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
        }

        return bytes;
    }
}
