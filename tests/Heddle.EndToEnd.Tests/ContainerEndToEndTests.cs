using System.Text.Json;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// The container sample as README gives it: `heddle image build` makes a real Debian image with mmdebstrap (about a
/// minute, from the machine's own apt sources), the static sample runs in it under `heddle up`, curl reaches each
/// instance and the VIP, the image cannot be deleted while the service names it, and deleting the service leaves no
/// container mount behind.
/// </summary>
[Collection(UpCollection.Name)]
public sealed class ContainerEndToEndTests
{
    [Fact]
    public async Task ImageBuild_ThenTheStaticSampleRunsInIt_AndDeleteLeavesNoMount()
    {
        await using var up = await UpCluster.StartAsync();
        var env = up.Environment;
        using var work = new TempDirectory();

        var build = ProcessRunner.Run(Heddle.Executable, ["image", "build", "static-base", "--include", "busybox"], TimeSpan.FromMinutes(5), environment: env);
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.Contains("image static-base imported", build.Stdout);

        var sample = Path.Combine(RepositoryRootAttribute.Value, "samples", "static");
        var package = work.Combine("static.hpkg");
        Assert.Equal(0, up.Run("pack", sample, "-o", package).ExitCode);
        var deploy = up.Run("deploy", package, "--config", Path.Combine(sample, "static.config.yaml"), "--wait");
        Assert.True(deploy.ExitCode == 0, deploy.ToString());

        using var status = JsonDocument.Parse(up.Run("status", "static", "-o", "json").Stdout);
        var instances = status.RootElement.GetProperty("instances").EnumerateArray().ToList();
        Assert.Equal(2, instances.Count);
        foreach (var instance in instances)
        {
            var url = $"http://{instance.GetProperty("nodeAddress").GetString()}:{instance.GetProperty("ports").GetProperty("http").GetInt32()}/index.html";
            Assert.Contains("Served by busybox httpd", ProcessRunner.Run("curl", ["-sS", "--max-time", "5", url], TimeSpan.FromSeconds(10)).Stdout);
            var pid = instance.GetProperty("pid").GetInt32();
            Assert.True(File.Exists($"/proc/{pid}/root/etc/debian_version"), "the instance's root is not the Debian image");
        }

        var vip = status.RootElement.GetProperty("vip").GetString();
        await Poll.UntilAsync(() => ProcessRunner.Run("curl", ["-sS", "--max-time", "2", $"http://{vip}:8080/index.html"], TimeSpan.FromSeconds(5)).Stdout.Contains("busybox"),
            TimeSpan.FromSeconds(30), "the VIP to answer");

        var list = up.Run("image", "list");
        Assert.Matches(@"static-base\s+shared\s+[0-9a-f]{12}.*static", list.Stdout);
        var refused = up.Run("image", "delete", "static-base");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("is named by kept revisions of static", refused.Stderr);

        Assert.Equal(0, up.Run("delete", "static", "--wait").ExitCode);
        Assert.DoesNotContain(File.ReadAllLines("/proc/mounts"), l => l.StartsWith("overlay", StringComparison.Ordinal) && l.Contains("/instances/static/web/", StringComparison.Ordinal));
    }
}
