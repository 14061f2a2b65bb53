using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Heddle.Agent;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Trust;
using Heddle.Controller.Trust;
using Heddle.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Heddle.Controller.Tests.Trust;

/// <summary>
/// Nodes are proven by certificates: an agent holding only the join token cannot pass for an enrolled node, a
/// certificate speaks for its own node only, forged certificates are refused on every port, a removed node is cut
/// off, downloads are limited to a node's own goal state, and certificates renew without a blip.
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class NodeTrustTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AnImpostorWithTheJoinTokenClaimingN1_IsRefused_AndN1KeepsItsInstances()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 2, containers: false);
        await cluster.DeploySampleAsync(SampleWithWeb(2));
        var before = await cluster.WaitUntilReadyAsync("hello", 3, TimeSpan.FromSeconds(60));
        using var state = new TempDirectory("heddle-impostor-");

        var impostor = cluster.AgentOptions(0) with { StateDirectory = state.Path, Address = "127.0.1.9", UseCgroups = false };
        var refused = await Assert.ThrowsAsync<RpcException>(() => AgentHost.StartAsync(impostor));

        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("node n1 is already enrolled", refused.Status.Detail);
        Assert.False(File.Exists(Path.Combine(state.Path, "node.crt")));
        var events = await cluster.Api.ListEventsAsync();
        Assert.Contains(events, e => e.Kind == "NodeRefused" && e.Subject == "n1");
        var after = await cluster.Api.GetServiceAsync("hello");
        Assert.Equal(before.Instances.Select(i => (i.Id, i.Pid)).Order(), after.Instances.Select(i => (i.Id, i.Pid)).Order());
        Assert.Equal(3, cluster.InstanceProcesses().Count);
    }

    [Fact]
    public async Task ACertificateSpeaksForItsOwnNodeOnly_AHelloNamingAnotherIsRefusedAndReceivesNothing()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 2, containers: false);
        var n2 = cluster.Agents[1]!.Identity.Certificate;

        var (received, status) = await ConnectAsync(cluster, n2, "n1");

        Assert.Equal(0, received);
        Assert.Equal(StatusCode.PermissionDenied, status);
        Assert.Contains((await cluster.Api.ListEventsAsync()), e => e.Kind == "NodeRefused" && e.Message.Contains("said hello as n1"));
    }

    [Fact]
    public async Task ForgedCertificates_SelfSignedOrFromAnotherCa_AreRefusedOnTheAgentPortAndTheLogServer()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        using var elsewhere = new TempDirectory("heddle-other-ca-");
        using var otherCa = CertificateAuthority.LoadOrCreate(elsewhere.Path, TimeProvider.System);
        var forged = new[]
        {
            ("self-signed node certificate", SelfSigned($"CN=n1, OU={ClusterTrust.NodeUnit}")),
            ("node certificate from another cluster's CA", FromCa(otherCa, "n1")),
        };

        foreach (var (what, certificate) in forged)
        {
            var (received, status) = await ConnectAsync(cluster, certificate, "n1");
            Assert.True(received == 0 && status != StatusCode.OK, $"{what}: the agent port took it ({status}, {received} messages)");
            using var downloads = AgentPortClient(cluster, certificate);
            await Assert.ThrowsAsync<HttpRequestException>(() => downloads.GetAsync("agent/v1/blobs/" + new string('0', 64)));
        }

        // The node's log server takes the controller's certificate only: none, a node's, or a forged controller's are turned away.
        var logUrl = cluster.Agents[0]!.LogUrl;
        foreach (var (what, certificate) in new[]
        {
            ("no certificate", (X509Certificate2?)null),
            ("a node's certificate", cluster.Agents[0]!.Identity.Certificate),
            ("a self-signed controller certificate", SelfSigned($"CN=heddle controller, OU={ClusterTrust.ControllerUnit}")),
        })
        {
            var handler = new SocketsHttpHandler { UseProxy = false };
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
            if (certificate is not null)
            {
                handler.SslOptions.ClientCertificates = [certificate];
            }

            using var http = new HttpClient(handler) { BaseAddress = logUrl, Timeout = TimeSpan.FromSeconds(10) };
            var e = await Record.ExceptionAsync(() => http.GetAsync("logs/hello/web/0"));
            Assert.True(e is HttpRequestException, $"the log server answered a client with {what}");
        }
    }

    [Fact]
    public async Task ANodeDownloadsOnlyBlobsItsGoalStateNames_AndNothingWithoutItsCertificate()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 2, containers: false);
        using var work = new TempDirectory("heddle-onenode-");
        var package = TestPackages.Build(work, "onenode", """
            name: onenode
            roles:
              job:
                entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
                size: { cores: 1, memoryMiB: 64 }
            """);
        var upload = await cluster.Api.UploadPackageAsync(package);
        await cluster.Api.DeployAsync(new(upload.Sha256, "service: onenode\nroles:\n  job: { instances: 1 }\n"));
        var service = await cluster.WaitUntilReadyAsync("onenode", 1, TimeSpan.FromSeconds(60));
        var holder = cluster.Agents.Single(a => a!.Options.NodeName == service.Instances[0].Node)!;
        var other = cluster.Agents.Single(a => a!.Options.NodeName != service.Instances[0].Node)!;
        var path = "agent/v1/blobs/" + upload.Sha256;

        using (var own = AgentPortClient(cluster, holder.Identity.Certificate))
        {
            Assert.Equal(HttpStatusCode.OK, (await own.GetAsync(path)).StatusCode);
        }

        using (var stranger = AgentPortClient(cluster, other.Identity.Certificate))
        {
            Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync(path)).StatusCode);
        }

        using (var anonymous = AgentPortClient(cluster, null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(path)).StatusCode);
        }

        // The API port does not serve agents, and a tenant-less join token opens nothing there.
        using var api = cluster.Controller.Http();
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync(path)).StatusCode);
    }

    [Fact]
    public async Task ARemovedNode_IsCutOffAtOnce_IsRefusedAfter_AndItsInstancesRunElsewhere()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 3, containers: false);
        await cluster.DeploySampleAsync();
        await cluster.WaitUntilReadyAsync("hello", 4, TimeSpan.FromSeconds(60));
        var victim = cluster.Agents[2]!;
        var certificate = victim.Identity.Certificate;
        Assert.True(victim.Connection.Connected);

        var clock = Stopwatch.StartNew();
        await cluster.Api.RemoveNodeAsync("n3");
        await Poll.UntilAsync(() => !victim.Connection.Connected, TimeSpan.FromSeconds(5), "n3's stream cut");
        output.WriteLine($"n3 cut off {clock.Elapsed.TotalMilliseconds:0} ms after 'nodes remove'");

        var (received, status) = await ConnectAsync(cluster, certificate, "n3");
        Assert.Equal(0, received);
        Assert.Equal(StatusCode.Unauthenticated, status);
        using (var downloads = AgentPortClient(cluster, certificate))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await downloads.GetAsync("agent/v1/blobs/" + new string('0', 64))).StatusCode);
        }

        Assert.DoesNotContain(await cluster.Api.ListNodesAsync(), n => n.Name == "n3");
        // The removed node's agent says so in its log, as a refusal with the reason, not as a network fault.
        await Poll.UntilAsync(() => cluster.AgentLogs.LinesOf("n3").Any(l => l.Contains(" Error ", StringComparison.Ordinal) && l.Contains("refused this node", StringComparison.Ordinal)
            && l.Contains("enrol", StringComparison.Ordinal)), TimeSpan.FromSeconds(20), $"n3's agent to log the refusal\n{cluster.AgentLogs}");
        var service = await Poll.UntilAsync(() => cluster.Api.GetServiceAsync("hello"),
            s => s.Instances.Count == 4 && s.Instances.All(i => i.Node != "n3" && i.State == "Ready") || s.Instances.Count(i => i.State == "Unplaced") > 0,
            TimeSpan.FromSeconds(60), "n3's instances placed elsewhere or reported unplaceable");
        Assert.DoesNotContain(service.Instances, i => i.Node == "n3");
        Assert.Contains(await cluster.Api.ListEventsAsync(), e => e.Kind == "NodeRemoved" && e.Subject == "n3");
    }

    [Fact]
    public async Task AnAgentRestartedWithItsCertificate_AndNoJoinString_IsAdoptedWithItsInstances()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        await cluster.DeploySampleAsync(SampleWithWeb(1));
        var before = await cluster.WaitUntilReadyAsync("hello", 2, TimeSpan.FromSeconds(60));

        await cluster.StopAgentAsync(0, stopInstances: false);
        var agent = await AgentHost.StartAsync(cluster.AgentOptions(0) with { Join = null });
        agent.StopInstancesOnExit = true;
        cluster.Agents[0] = agent;

        await Poll.UntilAsync(() => agent.Connection.Connected, TimeSpan.FromSeconds(20), "the restarted agent connected");
        var after = await cluster.WaitUntilReadyAsync("hello", 2, TimeSpan.FromSeconds(30));
        Assert.Equal(before.Instances.Select(i => i.Pid).Order(), after.Instances.Select(i => i.Pid).Order());
    }

    [Fact]
    public async Task NodeCertificates_AreRenewedAtTwoThirdsOfTheirLife_WithoutTheNodeNoticing()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false, configure: o => o with { NodeCertificateLifetime = TimeSpan.FromSeconds(6) });
        var agent = cluster.Agents[0]!;
        var first = agent.Identity.Certificate;

        await Poll.UntilAsync(() => agent.Identity.Certificate.SerialNumber != first.SerialNumber, TimeSpan.FromSeconds(20), "the certificate renewed");
        var renewed = agent.Identity.Certificate;
        output.WriteLine($"renewed {(renewed.NotBefore - first.NotBefore).TotalSeconds:0.0} s after the first was issued (lifetime 6 s)");

        // Past the first certificate's end (which ends the stream it opened) the node is still Ready, on a renewed one.
        await Poll.UntilAsync(() => DateTime.Now > first.NotAfter.AddSeconds(1), TimeSpan.FromSeconds(20), "the first certificate expired");
        await Poll.UntilAsync(() => cluster.Api.ListNodesAsync(), n => n.Single().Condition == "Ready" && agent.Connection.Connected, TimeSpan.FromSeconds(10), "n1 Ready on its renewed certificate");
        var (received, status) = await ConnectAsync(cluster, first, "n1");
        Assert.True(received == 0 && status != StatusCode.OK, "an expired certificate was accepted");
    }

    [Fact]
    public async Task MalformedEnrolments_AreRefusedWithASentence_EnrolNothing_AndTheControllerKeepsServing()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        var token = JoinString.Parse(cluster.JoinString).Token;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var otherKeyRequest = new CertificateRequest("CN=x", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
        using var channel = GrpcChannel.ForAddress(cluster.Controller.AgentUrl, new GrpcChannelOptions { HttpHandler = ClusterTrust.Handler(cluster.Controller.CaCertificate) });
        var client = new AgentService.AgentServiceClient(channel);
        var cases = new (string What, EnrollRequest Request, StatusCode Expected, string Says)[]
        {
            ("garbage for a signing request", new() { JoinToken = token, NodeName = "n7", SigningRequest = "not a CSR" }, StatusCode.PermissionDenied, "not valid"),
            ("a 10 MiB signing request", new() { JoinToken = token, NodeName = "n7", SigningRequest = new string('A', 10 << 20) }, StatusCode.PermissionDenied, "not valid"),
            ("a name with control characters", new() { JoinToken = token, NodeName = "n7\u0007\n", SigningRequest = otherKeyRequest }, StatusCode.PermissionDenied, "is not a node name"),
            ("a 100,000-character name", new() { JoinToken = token, NodeName = new string('n', 100_000), SigningRequest = otherKeyRequest }, StatusCode.PermissionDenied, "is not a node name"),
            ("a wrong join token", new() { JoinToken = new string('0', 40), NodeName = "n7", SigningRequest = otherKeyRequest }, StatusCode.Unauthenticated, "join token"),
        };

        foreach (var (what, request, expected, says) in cases)
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await client.EnrollAsync(request));
            Assert.True(e.StatusCode == expected && e.Status.Detail.Contains(says, StringComparison.Ordinal), $"{what}: {e.StatusCode} {e.Status.Detail}");
            Assert.DoesNotContain("\u0007", e.Status.Detail);
        }

        Assert.Equal(["n1"], (await cluster.Api.ListNodesAsync()).Select(n => n.Name));
        Assert.Equal("Ready", (await cluster.Api.ListNodesAsync()).Single().Condition);
    }

    private static string SampleWithWeb(int web) => File.ReadAllText(SamplePackage.ConfigurationPath).Replace("instances: 3", $"instances: {web}");

    /// <summary>Opens Connect with a certificate and says hello as a node: how many messages came back, and how the call ended.</summary>
    private static async Task<(int Received, StatusCode Status)> ConnectAsync(TestCluster cluster, X509Certificate2 certificate, string node)
    {
        using var channel = GrpcChannel.ForAddress(cluster.Controller.AgentUrl, new GrpcChannelOptions { HttpHandler = ClusterTrust.Handler(cluster.Controller.CaCertificate, () => certificate) });
        var client = new AgentService.AgentServiceClient(channel);
        var received = 0;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            using var call = client.Connect(cancellationToken: deadline.Token);
            try
            {
                await call.RequestStream.WriteAsync(new AgentMessage { Hello = new Hello { Node = new NodeInfo { Name = node, Address = "127.0.1.9", MemoryMib = 1024 } } });
            }
            catch (RpcException)
            {
                // The controller refuses a certificate before it reads the stream, and may have ended the call (and reset
                // the upload) before the Hello was written: the write then fails as Cancelled. Its answer is read below.
            }

            while (await call.ResponseStream.MoveNext(deadline.Token))
            {
                if (++received >= 2)
                {
                    return (received, StatusCode.OK);
                }
            }

            return (received, call.GetStatus().StatusCode);
        }
        catch (RpcException e)
        {
            return (received, e.StatusCode);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or InvalidOperationException)
        {
            return (received, StatusCode.Unavailable);
        }
    }

    private static HttpClient AgentPortClient(TestCluster cluster, X509Certificate2? certificate) =>
        new(ClusterTrust.Handler(cluster.Controller.CaCertificate, certificate is null ? null : () => certificate)) { BaseAddress = cluster.Controller.AgentUrl, Timeout = TimeSpan.FromSeconds(10) };

    private static X509Certificate2 SelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ClusterTrust.ClientAuth, ClusterTrust.ServerAuth], false));
        return ClusterTrust.WithUsableKey(request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1)));
    }

    private static X509Certificate2 FromCa(CertificateAuthority ca, string node)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest($"CN={node}", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
        using var signed = ca.IssueNode(node, csr, TimeSpan.FromDays(1), TimeProvider.System);
        return ClusterTrust.WithUsableKey(signed.CopyWithPrivateKey(key));
    }
}

/// <summary>An agent given several controller addresses enrols through one that answers and moves to the next when the one it talks to goes.</summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class ControllerAddressesTests
{
    [Fact]
    public async Task AnAgentWithSeveralControllerAddresses_EnrolsThroughOneThatAnswers_AndMovesOnWhenItsOneGoes()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1, containers: false);
        await using var dead = new LinkCutter(cluster.Controller.AgentUrl);
        await dead.CloseAsync(); // a controller that is not running: refused
        await using var first = new LinkCutter(cluster.Controller.AgentUrl);
        await using var second = new LinkCutter(cluster.Controller.AgentUrl);
        using var state = new TempDirectory("heddle-addresses-");
        var options = cluster.AgentOptions(0) with
        {
            NodeName = "n9", Address = "127.0.1.9", StateDirectory = state.Path, UseCgroups = false,
            ControllerAgentUrl = dead.Url, OtherControllerUrls = [first.Url, second.Url],
        };

        await using var agent = await AgentHost.StartAsync(options);
        agent.StopInstancesOnExit = true;
        await Poll.UntilAsync(() => agent.Connection.Connected, TimeSpan.FromSeconds(20), "n9 connected");
        Assert.Equal(first.Url, agent.Connection.Current);

        await first.CloseAsync();
        await Poll.UntilAsync(() => agent.Connection.Connected && agent.Connection.Current == second.Url, TimeSpan.FromSeconds(30), "n9 connected through the second address");
        await Poll.UntilAsync(() => cluster.Api.ListNodesAsync(), n => n.Single(x => x.Name == "n9").Condition == "Ready", TimeSpan.FromSeconds(10), "n9 Ready");
    }
}
