using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Heddle.Controller.Trust;
using Heddle.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Trust;

/// <summary>
/// An agent whose enrolment request timed out while the controller answered it asks again with the same key: it gets
/// its certificate again, where it used to find its own name taken for good. Anyone asking for the name with another
/// key is still refused.
/// </summary>
public sealed class EnrolmentRetryTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));
    private readonly TempDirectory _state = new("heddle-enrol-retry-");
    private readonly Heddle.Controller.Store.KvClusterStore _store;
    private readonly CertificateAuthority _ca;
    private readonly NodeCertificates _certificates;

    public EnrolmentRetryTests()
    {
        _store = KvStores.InMemory(_time);
        _ca = CertificateAuthority.LoadOrCreate(_state.Path, _time);
        _certificates = new NodeCertificates(_store, _ca, _time, new ControllerOptions { StateDirectory = _state.Path });
    }

    public void Dispose()
    {
        _ca.Dispose();
        _store.Dispose();
        _state.Dispose();
    }

    [Fact]
    public async Task TheSameKeyAskingAgain_GetsACertificate_AnotherKeyIsRefused()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        var (first, _) = await _certificates.EnrolAsync("n1", Request("n1", key));
        var (again, refusedAgain) = await _certificates.EnrolAsync("n1", Request("n1", key));
        var (impostor, refusal) = await _certificates.EnrolAsync("n1", Request("n1", other));

        Assert.NotNull(first);
        Assert.Null(refusedAgain);
        Assert.NotNull(again);
        Assert.Equal("n1", _certificates.NodeOf(again));
        Assert.Equal("n1", _certificates.NodeOf(first)); // the first stays in force: the agent may hold either
        Assert.Null(impostor);
        Assert.Contains("node n1 is already enrolled", refusal);
        first!.Dispose();
        again!.Dispose();
    }

    private static string Request(string node, ECDsa key) => new CertificateRequest($"CN={node}", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
}
