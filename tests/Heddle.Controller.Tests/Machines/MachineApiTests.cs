using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Api;
using Heddle.Contracts.Trust;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Machines;

/// <summary>
/// /v1/machines and /v1/boot/decisions on a real controller: bad input is refused with a sentence and changes nothing; a
/// known MAC's boot gets a join string that enrols its name once; an unknown MAC gets no image and one event however
/// often it asks; a boot token decides boots and opens nothing else.
/// </summary>
public sealed class MachineApiTests : IAsyncLifetime
{
    private const string Mac = "52:54:00:12:34:56";
    private readonly TempDirectory _state = new("heddle-machines-");
    private ControllerHost _controller = null!;
    private HeddleApiClient _api = null!;

    public async Task InitializeAsync()
    {
        _controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("controller"), BootJoinInterval = TimeSpan.Zero });
        _api = _controller.Client();
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _controller.DisposeAsync();
        _state.Dispose();
    }

    [Fact]
    public async Task Add_ListRemove_NormalisesTheMacAndNeverShowsASecret()
    {
        var added = await _api.AddMachineAsync(new MachineAddRequest("52-54-00-12-34-56", "m1", "rack-1", new Dictionary<string, string> { ["disk"] = "ssd" }));

        Assert.Equal((Mac, "m1", "rack-1", MachineState.Registered), (added.Mac, added.Name, added.FaultDomain, added.State));
        var listed = Assert.Single(await _api.ListMachinesAsync());
        Assert.Equal(("m1", Mac, "ssd"), (listed.Name, listed.Mac, listed.Labels["disk"]));
        Assert.Equal("m1", (await _api.RemoveMachineAsync("m1")).Name);
        Assert.Empty(await _api.ListMachinesAsync());
    }

    [Fact]
    public async Task Add_BadInputOrATakenNameOrMac_IsRefusedWithASentence_AndChangesNothing()
    {
        await _api.AddMachineAsync(new MachineAddRequest(Mac, "m1", "rack-1"));

        var malformed = await Assert.ThrowsAsync<HeddleApiException>(() => _api.AddMachineAsync(new MachineAddRequest("52:54:00:12:34", "m2", "rack-1")));
        var badName = await Assert.ThrowsAsync<HeddleApiException>(() => _api.AddMachineAsync(new MachineAddRequest("52:54:00:12:34:57", "M 2", "rack-1")));
        var sameName = await Assert.ThrowsAsync<HeddleApiException>(() => _api.AddMachineAsync(new MachineAddRequest("52:54:00:12:34:57", "m1", "rack-1")));
        var sameMac = await Assert.ThrowsAsync<HeddleApiException>(() => _api.AddMachineAsync(new MachineAddRequest("52:54:00:12:34:56".ToUpperInvariant(), "m2", "rack-1")));
        var unknown = await Assert.ThrowsAsync<HeddleApiException>(() => _api.RemoveMachineAsync("m9"));

        Assert.Equal((HttpStatusCode.BadRequest, ProblemTypes.InvalidRequest), (malformed.Status, malformed.Type));
        Assert.StartsWith("'52:54:00:12:34' is not a MAC address", malformed.Message);
        Assert.EndsWith("nothing was changed", malformed.Message);
        Assert.Equal(HttpStatusCode.BadRequest, badName.Status);
        Assert.Contains("'M 2' is not a node name", badName.Message);
        Assert.Equal((HttpStatusCode.Conflict, ProblemTypes.Conflict), (sameName.Status, sameName.Type));
        Assert.StartsWith($"a machine named m1 is registered already (MAC {Mac})", sameName.Message);
        Assert.Equal(HttpStatusCode.Conflict, sameMac.Status);
        Assert.StartsWith($"MAC {Mac} is registered already, as machine m1", sameMac.Message);
        Assert.Equal((HttpStatusCode.NotFound, ProblemTypes.NotFound), (unknown.Status, unknown.Type));
        Assert.Contains("no machine named 'm9'", unknown.Message);
        var only = Assert.Single(await _api.ListMachinesAsync());
        Assert.Equal(("m1", Mac), (only.Name, only.Mac));
    }

    [Fact]
    public async Task Machines_AreAdminOnly()
    {
        using var tenant = _controller.Client((await _api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token);

        var e = await Assert.ThrowsAsync<HeddleApiException>(() => tenant.AddMachineAsync(new MachineAddRequest(Mac, "m1", "rack-1")));

        Assert.Equal(HttpStatusCode.Forbidden, e.Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<HeddleApiException>(() => tenant.ListMachinesAsync())).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<HeddleApiException>(() => tenant.DecideBootAsync(Mac))).Status);
        Assert.Empty(await _api.ListMachinesAsync());
    }

    [Fact]
    public async Task Decide_AnUnknownMacAskingOften_GetsNoImageNoSecret_AndOneEvent()
    {
        for (var i = 0; i < 20; i++)
        {
            var decision = await _api.DecideBootAsync("52:54:00:99:99:99");
            Assert.Equal((BootAction.NoImage, null, null), (decision.Action, decision.Machine, decision.JoinString));
        }

        var events = (await _api.ListEventsAsync()).Where(e => e.Kind == "UnknownMachineBooted").ToList();
        Assert.Equal("52:54:00:99:99:99", Assert.Single(events).Subject);
        var bad = await Assert.ThrowsAsync<HeddleApiException>(() => _api.DecideBootAsync("not-a-mac"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
    }

    [Fact]
    public async Task Decide_AKnownMac_GetsAJoinStringThatEnrolsItsNameOnce_ThenBootsLocal()
    {
        await _api.AddMachineAsync(new MachineAddRequest(Mac, "m1", "rack-1"));
        var earlier = await _api.DecideBootAsync(Mac);
        var decision = await _api.DecideBootAsync(Mac.ToUpperInvariant());
        using var channel = GrpcChannel.ForAddress(_controller.AgentUrl, new GrpcChannelOptions { HttpHandler = ClusterTrust.Handler(_controller.CaCertificate) });
        var agents = new AgentService.AgentServiceClient(channel);

        Assert.Equal((BootAction.Install, "m1", "rack-1"), (decision.Action, decision.Machine, decision.FaultDomain));
        Assert.Equal([_controller.AgentUrl.ToString()], decision.Controllers);
        Assert.Equal(MachineState.JoinIssued, Assert.Single(await _api.ListMachinesAsync()).State);
        var token = JoinString.Parse(decision.JoinString!).Token;
        var revoked = await Assert.ThrowsAsync<RpcException>(async () => await agents.EnrollAsync(Request(JoinString.Parse(earlier.JoinString!).Token, "m1")));
        Assert.Equal(StatusCode.Unauthenticated, revoked.StatusCode); // each boot's join string replaces the one before
        var otherName = await Assert.ThrowsAsync<RpcException>(async () => await agents.EnrollAsync(Request(token, "m2")));
        Assert.Equal(StatusCode.PermissionDenied, otherName.StatusCode);
        Assert.Contains("enrols node m1 only", otherName.Status.Detail);
        var shared = JoinString.Parse(await _controller.CreateJoinStringAsync()).Token;
        var taken = await Assert.ThrowsAsync<RpcException>(async () => await agents.EnrollAsync(Request(shared, "m1")));
        Assert.Contains("is a registered machine's", taken.Status.Detail);

        var reply = await agents.EnrollAsync(Request(token, "m1"));

        using var certificate = X509Certificate2.CreateFromPem(reply.Certificate);
        Assert.Equal("m1", ClusterTrust.NameOf(certificate));
        var again = await Assert.ThrowsAsync<RpcException>(async () => await agents.EnrollAsync(Request(token, "m1")));
        Assert.Equal(StatusCode.Unauthenticated, again.StatusCode);
        Assert.Equal(MachineState.Enrolled, Assert.Single(await _api.ListMachinesAsync()).State);
        var later = await _api.DecideBootAsync(Mac);
        Assert.Equal((BootAction.BootLocal, null), (later.Action, later.JoinString));
    }

    [Fact]
    public async Task BootToken_DecidesBoots_AndOpensNothingElse()
    {
        await _api.AddMachineAsync(new MachineAddRequest(Mac, "m1", "rack-1"));
        using var boot = _controller.Client((await _api.CreateTokenAsync(new TokenCreateRequest(Boot: true))).Token);

        Assert.Equal(BootAction.Install, (await boot.DecideBootAsync(Mac)).Action);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Assert.ThrowsAsync<HeddleApiException>(() => boot.ListMachinesAsync())).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Assert.ThrowsAsync<HeddleApiException>(() => boot.ListServicesAsync())).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Assert.ThrowsAsync<HeddleApiException>(() => boot.CreateTokenAsync(new TokenCreateRequest()))).Status);
    }

    [Fact]
    public async Task Remove_RevokesTheJoinStringNotUsedYet()
    {
        await _api.AddMachineAsync(new MachineAddRequest(Mac, "m1", "rack-1"));
        var token = JoinString.Parse((await _api.DecideBootAsync(Mac)).JoinString!).Token;

        await _api.RemoveMachineAsync("m1");

        using var channel = GrpcChannel.ForAddress(_controller.AgentUrl, new GrpcChannelOptions { HttpHandler = ClusterTrust.Handler(_controller.CaCertificate) });
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await new AgentService.AgentServiceClient(channel).EnrollAsync(Request(token, "m1")));
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
    }

    [Fact]
    public async Task Decide_AKnownMacAskingAgainTooSoon_GetsTryLater_AndNoNewJoinString()
    {
        await using var strict = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("strict"), BootJoinInterval = TimeSpan.FromMinutes(10) });
        using var api = strict.Client();
        await api.AddMachineAsync(new MachineAddRequest(Mac, "m1", "rack-1"));

        var first = await api.DecideBootAsync(Mac);
        var again = await api.DecideBootAsync(Mac);

        Assert.Equal(BootAction.Install, first.Action);
        Assert.Equal((BootAction.TryLater, null), (again.Action, again.JoinString));
        Assert.Single(await api.ListTokensAsync(), t => t.Scope == "join (machine m1)");
    }

    internal static EnrollRequest Request(string token, string node)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new EnrollRequest { JoinToken = token, NodeName = node, SigningRequest = new CertificateRequest($"CN={node}", key, HashAlgorithmName.SHA256).CreateSigningRequestPem() };
    }
}
