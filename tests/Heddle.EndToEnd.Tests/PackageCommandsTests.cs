using System.Security.Cryptography;
using System.Text.Json;

using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

public sealed class PackageCommandsTests(SampleFixture sample) : IClassFixture<SampleFixture>
{
    [Fact]
    public void Validate_SampleFolderWithItsConfiguration_ExitsZero()
    {
        var result = Heddle.Run("validate", sample.SampleDirectory, "--config", sample.Config);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("valid (service 'hello', 2 role(s))", result.Stdout);
    }

    [Fact]
    public void Validate_EndlessConfiguration_IsRefusedAfterOneMiB()
    {
        var result = Heddle.Run("validate", sample.SampleDirectory, "--config", "/dev/zero");

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("heddle: configuration '/dev/zero' is larger than 1.0 MiB; a configuration is a few lines\n", result.Stderr);
    }

    [Theory]
    [InlineData("inspect", "/dev/zero")]
    [InlineData("deploy", "/dev/zero", "--config", "{config}")]
    public void AnEndlessPackageFile_IsRefusedAtOnce_NotHashedForever(params string[] args)
    {
        var result = Heddle.Run([.. args.Select(a => a.Replace("{config}", sample.Config))]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("HD3001: not a package", result.Stdout + result.Stderr);
    }

    [Fact]
    public void Validate_SamplePackage_ExitsZero()
    {
        var result = Heddle.Run("validate", sample.Package, "--config", sample.Config);

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public void Validate_BrokenConfiguration_ExitsOneAndSaysWhereAndWhat()
    {
        var config = Path.Combine(sample.Work, "broken.config.yaml");
        File.WriteAllText(config, "service: hello\nroles:\n  web: { instances: 0, settings: { Greeting: hi } }\n  wroker: { instances: 1 }\n");

        var result = Heddle.Run("validate", sample.Package, "--config", config);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{config}:3:21: HD2006: role 'web' instances 0 is outside 1..1000", result.Stderr);
        Assert.Contains($"{config}:4:3: HD2002: role 'wroker' is configured but service 'hello' does not define it; did you mean 'worker'?", result.Stderr);
        Assert.Contains("HD2003: role 'worker' has no instance count", result.Stderr);
    }

    [Fact]
    public void Validate_JsonOutput_ListsDiagnosticsWithPositions()
    {
        var config = Path.Combine(sample.Work, "json.config.yaml");
        File.WriteAllText(config, "service: hello\nroles:\n  web: { instances: 2, settings: { Greeting: hi } }\n  worker: { instances: 1, settings: { IntervalSeconds: \"5\", Speed: fast } }\n");

        var result = Heddle.Run("validate", sample.Package, "--config", config, "-o", "json");

        Assert.Equal(1, result.ExitCode);
        using var json = JsonDocument.Parse(result.Stdout);
        Assert.False(json.RootElement.GetProperty("valid").GetBoolean());
        var diagnostic = Assert.Single(json.RootElement.GetProperty("diagnostics").EnumerateArray());
        Assert.Equal(("HD2004", 4, 61), (diagnostic.GetProperty("code").GetString(), diagnostic.GetProperty("line").GetInt32(), diagnostic.GetProperty("column").GetInt32()));
    }

    [Fact]
    public void Validate_FileThatIsNotAPackage_ExitsOne()
    {
        var bogus = Path.Combine(sample.Work, "bogus.hpkg");
        File.WriteAllText(bogus, "definitely not a zip");

        var result = Heddle.Run("validate", bogus);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("bogus.hpkg: HD3001: not a package", result.Stderr);
    }

    [Theory]
    [InlineData("validate", "/no/such/folder")]
    [InlineData("validate")]
    [InlineData("validate", ".", "--frobnicate")]
    [InlineData("inspect", "/no/such.hpkg")]
    [InlineData("pack", "/no/such/folder")]
    [InlineData("inspect", "x.hpkg", "-o", "yaml")]
    public void UsageErrors_ExitTwo(params string[] args)
    {
        var result = Heddle.Run(args);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.StartsWith("heddle: ", result.Stderr);
    }

    [Fact]
    public void Pack_SampleTwice_PrintsTheSameHashAsTheFilesOwn()
    {
        var again = Path.Combine(sample.Work, "again.hpkg");

        var result = Heddle.Run("pack", sample.SampleDirectory, "-o", again);

        Assert.True(result.ExitCode == 0, result.ToString());
        var printed = result.Stdout.Split('\n').Single(l => l.StartsWith("sha256 ", StringComparison.Ordinal))["sha256 ".Length..].Trim();
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(again))), printed);
        Assert.Equal(File.ReadAllBytes(sample.Package), File.ReadAllBytes(again));
    }

    [Fact]
    public void Inspect_Json_DescribesRolesSizesEndpointsAndHash()
    {
        var result = Heddle.Run("inspect", sample.Package, "-o", "json");

        Assert.True(result.ExitCode == 0, result.ToString());
        using var json = JsonDocument.Parse(result.Stdout);
        var root = json.RootElement;
        Assert.Equal("hello", root.GetProperty("service").GetString());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(sample.Package))), root.GetProperty("sha256").GetString());
        var roles = root.GetProperty("roles").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!);
        Assert.Equal(8080, roles["web"].GetProperty("endpoints")[0].GetProperty("port").GetInt32());
        Assert.Equal(768, roles["worker"].GetProperty("size").GetProperty("memoryMiB").GetInt32());
        Assert.True(root.GetProperty("files").GetInt32() > 3);
    }

    [Fact]
    public void Inspect_Text_ShowsServiceAndRoles()
    {
        var result = Heddle.Run("inspect", sample.Package);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("role web", result.Stdout);
        Assert.Contains("endpoint     http: input http port 8080", result.Stdout);
        Assert.Contains("size         extrasmall (1 cores, 768 MiB)", result.Stdout);
    }
}
