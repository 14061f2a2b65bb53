using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Heddle.Contracts.Trust;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;
using Heddle.Controller.Trust;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Store;

/// <summary>The key-value contract holds alike on etcd over TLS with a client certificate.</summary>
public sealed class TlsEtcdKeyValueStoreTests : KeyValueStoreContractTests
{
    private EtcdProcess? _etcd;

    protected override async Task<IKeyValueStore> OpenAsync()
    {
        _etcd = await EtcdProcess.StartAsync(tls: true);
        return new EtcdKeyValueStore(_etcd.ClientTls!.Connect(_etcd.ClientUrls));
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
    }
}

/// <summary>
/// etcd started with TLS and client certificates (as `heddle up --controllers N` starts it): only an etcd client certificate
/// of the cluster CA gets in, and a controller given one works on it.
/// </summary>
public sealed class EtcdTlsTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private EtcdProcess _etcd = null!;
    private readonly TempDirectory _directory = new("heddle-etcdtls-");

    public async Task InitializeAsync() => _etcd = await EtcdProcess.StartAsync(members: 1, tls: true);

    public async Task DisposeAsync()
    {
        await _etcd.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task Store_WithoutAClientCertificate_IsRefused()
    {
        var trusted = new X509Certificate2Collection();
        trusted.ImportFromPemFile(_etcd.ClientTls!.CaFile);
        await using var store = new EtcdKeyValueStore(new EtcdConnection(_etcd.ClientUrls, trusted));
        var e = await Assert.ThrowsAsync<KvUnavailableException>(() => store.GetAsync("secrets/ca"));
        Assert.StartsWith("store unavailable: 0 of 1 etcd members reachable", e.Message);
    }

    [Fact]
    public async Task Store_InPlainHttp_IsRefused()
    {
        await using var store = new EtcdKeyValueStore([.. _etcd.ClientUrls.Select(u => new UriBuilder(u) { Scheme = "http" }.Uri)]);
        await Assert.ThrowsAsync<KvUnavailableException>(() => store.GetAsync("secrets/ca"));
    }

    [Fact]
    public async Task Store_WithANodeCertificateOfTheSameCa_IsRefused()
    {
        // An agent's certificate comes from the same CA: it must not open the store (it would run anything anywhere).
        using var ca = CertificateAuthority.LoadOrCreate(_etcd.CaDirectory, TimeProvider.System);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var signingRequest = new CertificateRequest("CN=n1", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
        using var issued = ca.IssueNode("n1", signingRequest, TimeSpan.FromHours(1), TimeProvider.System);
        var node = ClusterTrust.WithUsableKey(issued.CopyWithPrivateKey(key));
        await using var store = new EtcdKeyValueStore(new EtcdConnection(_etcd.ClientUrls, [ca.Certificate], node));
        await Assert.ThrowsAsync<KvUnavailableException>(() => store.GetAsync("secrets/ca"));
    }

    [Fact]
    public async Task Controller_WithACertificateOfAnotherCa_IsRefusedWithASentence()
    {
        using var other = CertificateAuthority.LoadOrCreate(Directory.CreateDirectory(_directory.Combine("other-ca")).FullName, TimeProvider.System);
        var foreign = EtcdCertificates.WriteClient(other, "stranger", _directory.Combine("other-pki"), TimeSpan.FromHours(1), TimeProvider.System);
        var options = new ControllerOptions
        {
            StateDirectory = _directory.Combine("stranger"), Store = _etcd.StoreOption,
            EtcdTls = new EtcdTlsFiles(_etcd.ClientTls!.CaFile, foreign.CertificateFile, foreign.KeyFile),
        };
        var e = await Assert.ThrowsAsync<KvUnavailableException>(() => ControllerHost.StartAsync(options));
        output.WriteLine(e.Message);
        Assert.Contains("store unavailable: 0 of 1 etcd members reachable", e.Message);
        Assert.Contains("check that --etcd-cert is an etcd client certificate of the CA the members trust", e.Message);
    }

    [Fact]
    public async Task Controllers_WithTheirCertificates_WorkOverTls_TheStoreHoldsNoCaKey_AndOneWithoutTheCaIsRefused()
    {
        var first = _directory.Combine("first");
        var options = new ControllerOptions { StateDirectory = first, Store = _etcd.StoreOption, EtcdTls = _etcd.ClientTls };
        await using (var controller = await ControllerHost.StartAsync(options))
        {
            using var api = new Contracts.Api.HeddleApiClient(controller.ApiUrl, controller.ApiToken, controller.CaCertificate);
            var made = await api.CreateTokenAsync(new Contracts.Api.TokenCreateRequest(Description: "over tls"));
            Assert.Contains(await api.ListTokensAsync(), t => t.Id == made.Id);
        }

        // The store holds the CA's certificate, public, and nothing that signs.
        await using (var store = new EtcdKeyValueStore(_etcd.ClientTls!.Connect(_etcd.ClientUrls), ClusterStores.EtcdRoot))
        {
            var shared = Encoding.UTF8.GetString((await store.GetAsync("secrets/ca"))!.Value!);
            Assert.Equal(File.ReadAllText(Path.Combine(first, "ca.crt")).Trim(), JsonDocument.Parse(shared).RootElement.GetProperty("Certificate").GetString()!.Trim());
            Assert.DoesNotContain("PRIVATE KEY", shared);
        }

        // A second controller without the CA's files is refused and told what to copy; given them, it starts.
        var second = _directory.Combine("second");
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => ControllerHost.StartAsync(options with { StateDirectory = second }));
        Assert.Contains("has no cluster CA (ca.crt and ca.key)", refused.Message);
        Assert.Contains($"copy ca.crt and ca.key (keep ca.key mode 0600) from the state folder of a controller of this cluster", refused.Message);
        TestCluster.CopyCa(first, second);
        await using (var controller = await ControllerHost.StartAsync(options with { StateDirectory = second }))
        {
            Assert.Equal(File.ReadAllText(Path.Combine(first, "ca.crt")).Trim(), controller.CaCertificatePem.Trim());
        }

        // One with another cluster's CA is refused too.
        var stranger = _directory.Combine("stranger");
        using (CertificateAuthority.LoadOrCreate(Directory.CreateDirectory(stranger).FullName, TimeProvider.System))
        {
        }

        var another = await Assert.ThrowsAsync<InvalidOperationException>(() => ControllerHost.StartAsync(options with { StateDirectory = stranger }));
        Assert.Contains("holds the CA of another cluster", another.Message);
    }

    [Fact]
    public async Task Controller_OnAStoreHoldingTheCaKeyInClear_RemovesTheKey_AndKeepsTheCertificate()
    {
        // As an older version left it: the CA with its key under secrets/ca.
        var old = Directory.CreateDirectory(_directory.Combine("old")).FullName;
        using (CertificateAuthority.LoadOrCreate(old, TimeProvider.System))
        {
        }

        var certificate = File.ReadAllText(Path.Combine(old, "ca.crt"));
        var inClear = JsonSerializer.SerializeToUtf8Bytes(new { Certificate = certificate, PrivateKey = File.ReadAllText(Path.Combine(old, "ca.key")) });
        await using var store = new EtcdKeyValueStore(_etcd.ClientTls!.Connect(_etcd.ClientUrls), ClusterStores.EtcdRoot);
        Assert.True((await store.CommitAsync([new KvCondition("secrets/ca", 0)], [KvWrite.Put("secrets/ca", inClear)])).Succeeded);

        await using (await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = old, Store = _etcd.StoreOption, EtcdTls = _etcd.ClientTls }))
        {
        }

        var now = Encoding.UTF8.GetString((await store.GetAsync("secrets/ca"))!.Value!);
        Assert.DoesNotContain("PRIVATE KEY", now);
        Assert.Equal(certificate.Trim(), JsonDocument.Parse(now).RootElement.GetProperty("Certificate").GetString()!.Trim());
    }
}

/// <summary>A controller says when its etcd traffic crosses a network in clear.</summary>
public sealed class EtcdClearTextWarningTests
{
    [Theory]
    [InlineData(null, false)]
    [InlineData("sqlite:/tmp/x.db", false)]
    [InlineData("etcd://127.0.0.1:2379,localhost:2381", false)]
    [InlineData("etcd://127.0.0.1:2379,10.0.0.2:2379", true)]
    [InlineData("etcd://h1:2379", true)]
    public void ClearTextWarning_WithoutTls_WarnsUnlessEveryMemberIsOnLoopback(string? store, bool warns)
    {
        var options = new ControllerOptions { StateDirectory = "/nonexistent", Store = store };
        var warning = ClusterStores.ClearTextWarning(options);
        Assert.Equal(warns, warning is not null);
        if (warns)
        {
            Assert.Contains("is in clear and unauthenticated", warning);
        }

        Assert.Null(ClusterStores.ClearTextWarning(options with { EtcdTls = new EtcdTlsFiles("ca.crt", "c.crt", "c.key") }));
    }
}
