using System.Net;
using System.Net.NetworkInformation;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Heddle.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Trust;

/// <summary>The certificate both controller ports present names every address and name the controller is reached by; the CA is served without a token.</summary>
public sealed class ControllerCertificateTests : IDisposable
{
    private readonly TempDirectory _state = new("heddle-cert-");

    public void Dispose() => _state.Dispose();

    [Fact]
    public async Task ServedCertificate_NamesTheListenAddressLoopbackAndEachTlsName_OnBothPorts()
    {
        await using var controller = await ControllerHost.StartAsync(new ControllerOptions
        {
            StateDirectory = _state.Combine("named"), TlsNames = ["heddle.example", "api.heddle.example.", "198.18.0.7", "2001:db8::7"],
        });

        foreach (var url in new[] { controller.ApiUrl, controller.AgentUrl })
        {
            var (dns, ips) = Names(await ServedAsync(url));
            Assert.Superset(new HashSet<string>(["localhost", "heddle.example", "api.heddle.example"]), dns);
            Assert.Superset(new HashSet<IPAddress>([IPAddress.Loopback, IPAddress.IPv6Loopback, IPAddress.Parse("198.18.0.7"), IPAddress.Parse("2001:db8::7")]), ips);
        }
    }

    [Fact]
    public async Task ServedCertificate_OnEveryAddress_NamesEachAddressOfTheHost_AndIsMadeAfreshWithNewNames()
    {
        var options = new ControllerOptions { StateDirectory = _state.Combine("any"), ListenAddress = "0.0.0.0" };
        // The host's addresses there both before the controller started and after its certificate was read: other tests
        // running beside this one add and remove addresses of their own meanwhile, which the certificate cannot know.
        var before = LocalAddresses();
        await using (var controller = await ControllerHost.StartAsync(options))
        {
            var (_, ips) = Names(await ServedAsync(new Uri($"https://127.0.0.1:{controller.ApiUrl.Port}/")));
            var local = LocalAddresses();
            local.IntersectWith(before);
            Assert.Superset(local, ips);
            Assert.DoesNotContain(IPAddress.Parse("198.18.0.9"), ips);
        }

        // The same state folder started again with a name more: the certificate carries it.
        await using (var again = await ControllerHost.StartAsync(options with { TlsNames = ["198.18.0.9"] }))
        {
            var (_, ips) = Names(await ServedAsync(new Uri($"https://127.0.0.1:{again.ApiUrl.Port}/")));
            Assert.Contains(IPAddress.Parse("198.18.0.9"), ips);
        }
    }

    /// <summary>The host's unicast addresses, without IPv6 scope ids (as a certificate holds them).</summary>
    private static HashSet<IPAddress> LocalAddresses() =>
        NetworkInterface.GetAllNetworkInterfaces().SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(u => new IPAddress(u.Address.GetAddressBytes())).ToHashSet();

    [Fact]
    public async Task Ca_IsServedWithoutAToken_ButInfoNeedsOne_AndShowsTheCaHash()
    {
        await using var controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("ca") });
        using var http = controller.Http();

        var ca = await http.GetAsync("v1/ca");
        var info = await http.GetAsync("v1/info");

        Assert.Equal(HttpStatusCode.OK, ca.StatusCode);
        Assert.Equal(controller.CaCertificatePem.Trim(), (await ca.Content.ReadAsStringAsync()).Trim());
        Assert.Equal(HttpStatusCode.Unauthorized, info.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsync("v1/ca", null)).StatusCode);
        using var api = controller.Client();
        Assert.Equal(controller.CaHash, (await api.InfoAsync()).CaHash);
        Assert.StartsWith("sha256:", controller.CaHash);
        Assert.Equal(Heddle.Contracts.Trust.ClusterTrust.PublicKeyHash(controller.CaCertificate), controller.CaHash["sha256:".Length..]);
    }

    private static async Task<X509Certificate2> ServedAsync(Uri url)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(url.Host, url.Port).WaitAsync(TimeSpan.FromSeconds(10));
        X509Certificate2? served = null;
        await using var tls = new SslStream(tcp.GetStream(), false, (_, certificate, _, _) =>
        {
            served = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            return true;
        });
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "heddle-test" }).WaitAsync(TimeSpan.FromSeconds(10));
        return served ?? throw new InvalidOperationException($"{url} presented no certificate");
    }

    private static (HashSet<string> Dns, HashSet<IPAddress> Ips) Names(X509Certificate2 certificate)
    {
        var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        return (san.EnumerateDnsNames().ToHashSet(StringComparer.OrdinalIgnoreCase), san.EnumerateIPAddresses().ToHashSet());
    }
}
