using Heddle.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Trust;

/// <summary>Both controller ports speak TLS with a certificate from the cluster CA: curl without the CA fails, with it the API answers.</summary>
public sealed class TlsPortsTests : IAsyncLifetime
{
    private readonly TempDirectory _state = new("heddle-tls-");
    private ControllerHost _controller = null!;

    public async Task InitializeAsync() => _controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("controller") });

    public async Task DisposeAsync()
    {
        await _controller.DisposeAsync();
        _state.Dispose();
    }

    [Fact]
    public void Curl_WithoutTheCa_FailsOnBothPorts_WithItTheApiAnswers()
    {
        Assert.Equal("https", _controller.ApiUrl.Scheme);
        Assert.Equal("https", _controller.AgentUrl.Scheme);
        var ca = _state.Combine("controller", "ca.crt");
        var auth = $"Authorization: Bearer {_controller.ApiToken}";

        // 60: the peer's certificate cannot be checked against the known CAs (the system's).
        Assert.Equal(60, Curl("-H", auth, new Uri(_controller.ApiUrl, "v1/info").ToString()).ExitCode);
        Assert.Equal(60, Curl(new Uri(_controller.AgentUrl, "agent/v1/ca").ToString()).ExitCode);

        var info = Curl("--cacert", ca, "-H", auth, "-w", "\n%{http_code}", new Uri(_controller.ApiUrl, "v1/info").ToString());
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.EndsWith("\n200", info.Stdout);
        Assert.Contains("\"apiUrl\":\"https://", info.Stdout);

        var agentPort = Curl("--cacert", ca, "-w", "\n%{http_code}", new Uri(_controller.AgentUrl, "agent/v1/ca").ToString());
        Assert.True(agentPort.ExitCode == 0, agentPort.ToString());
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", agentPort.Stdout);

        // Plain HTTP to the TLS port gets nothing useful; the API is not served on the agent port and the other way round.
        var plain = Curl("-H", auth, "-w", "%{http_code}", $"http://{_controller.ApiUrl.Authority}/v1/info");
        Assert.False(plain.ExitCode == 0 && plain.Stdout.EndsWith("200", StringComparison.Ordinal), plain.ToString());
        Assert.EndsWith("404", Curl("--cacert", ca, "-H", auth, "-w", "%{http_code}", new Uri(_controller.AgentUrl, "v1/info").ToString()).Stdout);
        Assert.EndsWith("404", Curl("--cacert", ca, "-w", "%{http_code}", new Uri(_controller.ApiUrl, "agent/v1/ca").ToString()).Stdout);
    }

    [Fact]
    public async Task InsecureHttp_ServesTheApiInClear_AndTheAgentPortStaysTls()
    {
        await using var insecure = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("insecure"), InsecureHttp = true });

        Assert.Equal("http", insecure.ApiUrl.Scheme);
        Assert.Equal("https", insecure.AgentUrl.Scheme);
        var info = Curl("-H", $"Authorization: Bearer {insecure.ApiToken}", "-w", "\n%{http_code}", new Uri(insecure.ApiUrl, "v1/info").ToString());
        Assert.EndsWith("\n200", info.Stdout);
    }

    [Fact]
    public async Task AClientOfOneCluster_DoesNotTrustAnotherClustersController_AndSaysSo()
    {
        await using var other = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("other") });
        using var confused = new Heddle.Contracts.Api.HeddleApiClient(other.ApiUrl, other.ApiToken, _controller.CaCertificate);

        var e = await Assert.ThrowsAsync<Heddle.Contracts.Api.HeddleApiException>(() => confused.ListServicesAsync());

        Assert.Equal("untrusted", e.Type);
        Assert.Contains("not signed by this cluster's CA", e.Message);
    }

    private static ProcessResult Curl(params string[] args) => ProcessRunner.Run("curl", ["-sS", "--max-time", "10", .. args], TimeSpan.FromSeconds(20));
}
