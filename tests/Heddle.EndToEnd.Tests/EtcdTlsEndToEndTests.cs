using System.Text.Json;
using Heddle.Testing;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// `heddle up --controllers 3` runs its etcd over TLS with client certificates of the cluster CA: etcdctl, as anyone who
/// reaches a member would use it, gets nothing without a certificate or in plain HTTP, and with one the store holds the
/// CA's certificate but never its key.
/// </summary>
[Collection(UpCollection.Name)]
public sealed class EtcdTlsEndToEndTests(ITestOutputHelper output)
{
    [Fact]
    public async Task UpWithThreeControllers_EveryMemberRefusesClientsWithoutACertificateAndPlainHttp_AndTheStoreHoldsNoCaKey()
    {
        await using var up = await UpCluster.StartAsync("--controllers", "3");
        using var json = JsonDocument.Parse(File.ReadAllText(up.UpFile));
        var etcd = json.RootElement.GetProperty("etcd");
        var members = etcd.GetProperty("store").GetString()!["etcd://".Length..].Split(',');
        Assert.Equal(3, members.Length);
        var ca = etcd.GetProperty("ca").GetString()!;

        // A client certificate made as an operator makes one, from the first controller's folder (which holds the CA).
        using var work = new TempDirectory();
        var issue = up.Run("ca", "issue-etcd-client", "--dir", Path.Combine(up.Home, "cluster", "controller"), "--name", "probe", "--out", work.Path);
        Assert.True(issue.ExitCode == 0, issue.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(work.Combine("probe.key")));

        foreach (var member in members)
        {
            var bare = Etcdctl([$"--endpoints=https://{member}", "--cacert", ca], "get", "/heddle/secrets/ca");
            Assert.True(bare.ExitCode != 0, $"without a certificate: {bare}");
            var plain = Etcdctl([$"--endpoints=http://{member}"], "get", "/heddle/secrets/ca");
            Assert.True(plain.ExitCode != 0, $"in plain HTTP: {plain}");

            foreach (var (certificate, key) in new[] { (etcd.GetProperty("cert").GetString()!, etcd.GetProperty("key").GetString()!), (work.Combine("probe.crt"), work.Combine("probe.key")) })
            {
                var read = Etcdctl([$"--endpoints=https://{member}", "--cacert", ca, "--cert", certificate, "--key", key], "get", "/heddle/secrets/ca", "--print-value-only");
                Assert.True(read.ExitCode == 0, $"with {certificate}: {read}");
                Assert.Contains("BEGIN CERTIFICATE", read.Stdout);
                Assert.DoesNotContain("PRIVATE KEY", read.Stdout);
            }

            output.WriteLine($"{member}: refused without a certificate ({Last(bare.Stderr)}) and in plain HTTP ({Last(plain.Stderr)}); read with one");
        }

        // The controllers work on it: every one answers and the nodes are Ready.
        using var info = JsonDocument.Parse(up.Run("info", "-o", "json").Stdout);
        Assert.Equal(3, info.RootElement.GetProperty("controllers").GetArrayLength());
        Assert.Contains("(TLS)", info.RootElement.GetProperty("store").GetString());
    }

    private static ProcessResult Etcdctl(string[] connection, params string[] command) =>
        ProcessRunner.Run("etcdctl", [.. connection, "--dial-timeout=2s", "--command-timeout=3s", .. command], TimeSpan.FromSeconds(30),
            environment: new Dictionary<string, string> { ["ETCDCTL_API"] = "3" });

    private static string Last(string text) => text.Trim().Split('\n')[^1];
}
