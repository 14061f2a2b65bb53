using System.Text.Json;
using Heddle.Testing;
using Xunit;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// Trust as a user meets it on `heddle up`: tenant tokens made with `heddle token create`, used with --token and
/// $HEDDLE_TOKEN; a tenant's quota set with `heddle quota set` and a scale past it refused; a second agent claiming a
/// node's name refused; curl needs the cluster CA.
/// </summary>
[Collection(UpCollection.Name)]
public sealed class TrustEndToEndTests
{
    [Fact]
    public async Task TenantTokens_FromTheCli_SeeTheirOwn_AndAnImpostorAgentIsRefused()
    {
        await using var up = await UpCluster.StartAsync("--node-timeout", "10s");
        var contoso = Token(up, "--tenant", "contoso");
        var fabrikam = Token(up, "--tenant", "fabrikam");
        var asContoso = new Dictionary<string, string>(up.Environment) { ["HEDDLE_TOKEN"] = contoso };

        var deploy = Heddle.Run(asContoso, "deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath, "--wait");
        Assert.True(deploy.ExitCode == 0, deploy.ToString());
        using (var status = JsonDocument.Parse(up.Run("status", "hello", "-o", "json").Stdout))
        {
            Assert.Equal("contoso", status.RootElement.GetProperty("tenant").GetString());
        }

        var hidden = up.Run("--token", fabrikam, "status", "hello");
        Assert.Equal(1, hidden.ExitCode);
        Assert.Contains("no service 'hello'", hidden.Stderr);
        var forbidden = up.Run("--token", contoso, "nodes");
        Assert.Equal(1, forbidden.ExitCode);
        Assert.Contains("cluster-wide operation", forbidden.Stderr);
        var taken = up.Run("--token", fabrikam, "deploy", SamplePackage.File, "--config", SamplePackage.ConfigurationPath);
        Assert.Equal(1, taken.ExitCode);
        Assert.Contains("taken by another tenant", taken.Stderr);

        // Quotas: an admin sets one, a scale past it is refused with the sentence, the tenant reads its own and cannot change it.
        Assert.Equal(0, up.Run("quota", "set", "contoso", "--instances", "4").ExitCode);
        var overQuota = up.Run("--token", contoso, "scale", "hello", "web", "4");
        Assert.Equal(1, overQuota.ExitCode);
        Assert.Contains("tenant contoso's quota allows 4 instances; 4 are in use and this scale needs 1 more; nothing was changed", overQuota.Stderr);
        var ownQuota = up.Run("--token", contoso, "quota", "show");
        Assert.True(ownQuota.ExitCode == 0 && ownQuota.Stdout.Contains("4/4") && !ownQuota.Stdout.Contains("default"), ownQuota.ToString());
        var selfRaise = up.Run("--token", contoso, "quota", "set", "contoso", "--instances", "100");
        Assert.Equal(1, selfRaise.ExitCode);
        Assert.Contains("cluster-wide operation", selfRaise.Stderr);

        using (var list = JsonDocument.Parse(up.Run("token", "list", "-o", "json").Stdout))
        {
            var tokens = list.RootElement.EnumerateArray().ToList();
            Assert.Contains(tokens, t => t.GetProperty("scope").GetString() == "tenant contoso");
            Assert.DoesNotContain(contoso, list.RootElement.GetRawText());
            var id = tokens.Single(t => t.GetProperty("scope").GetString() == "tenant fabrikam").GetProperty("id").GetString()!;
            Assert.Equal(0, up.Run("token", "revoke", id).ExitCode);
        }

        var revoked = up.Run("--token", fabrikam, "status");
        Assert.Equal(1, revoked.ExitCode);
        Assert.Contains("not accepted", revoked.Stderr);

        // A second agent with a fresh join string, claiming n1: refused, and n1 keeps its instances.
        using var info = JsonDocument.Parse(up.Run("info", "-o", "json").Stdout);
        var join = Token(up, "--join", "--uses", "1", "--ttl", "10m");
        Assert.StartsWith("hjoin.", join);
        using var impostorState = new TempDirectory("heddle-impostor-");
        var impostor = Heddle.Run(new Dictionary<string, string>(up.Environment) { ["HEDDLE_JOIN"] = join },
            "agent", "--controller", info.RootElement.GetProperty("agentUrl").GetString()!, "--name", "n1", "--address", "127.0.1.9", "--log-port", "0", "--state", impostorState.Path, "--no-cgroups", "--no-containers");
        Assert.Equal(1, impostor.ExitCode);
        Assert.Contains("node n1 is already enrolled", impostor.Stderr);
        using (var status = JsonDocument.Parse(up.Run("status", "hello", "-o", "json").Stdout))
        {
            Assert.Equal(4, status.RootElement.GetProperty("readyInstances").GetInt32());
        }

        // curl: without the CA the API is not trusted; with the CA from the client configuration it answers.
        var config = ClientConfigFile.Read(up.Home);
        var url = new Uri(config.ApiUrl, "v1/services").ToString();
        Assert.Equal(60, ProcessRunner.Run("curl", ["-sS", "--max-time", "10", "-H", $"Authorization: Bearer {contoso}", url], TimeSpan.FromSeconds(20)).ExitCode);
        var trusted = ProcessRunner.Run("curl", ["-sS", "--max-time", "10", "--cacert", config.WriteCa(impostorState.Path), "-H", $"Authorization: Bearer {contoso}", url], TimeSpan.FromSeconds(20));
        Assert.True(trusted.ExitCode == 0 && trusted.Stdout.Contains("\"name\":\"hello\""), trusted.ToString());
        await Task.CompletedTask;
    }

    private static string Token(UpCluster up, params string[] args)
    {
        var made = up.Run(["token", "create", .. args, "-o", "json"]);
        Assert.True(made.ExitCode == 0, made.ToString());
        using var json = JsonDocument.Parse(made.Stdout);
        return json.RootElement.GetProperty("token").GetString()!;
    }
}
